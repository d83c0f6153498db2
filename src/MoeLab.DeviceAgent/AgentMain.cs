namespace MoeLab.DeviceAgent;

/// <summary>Entry point shared by the standalone agent binary and <c>moelab agent</c>.</summary>
public static class AgentMain
{
    public static int Run(string[] args)
    {
        Console.Error.WriteLine("moelab-agent: not implemented yet");
        return 2;
    }
}
