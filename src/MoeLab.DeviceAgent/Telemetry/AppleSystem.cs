using System.Runtime.InteropServices;

namespace MoeLab.DeviceAgent.Telemetry;

/// <summary>
/// Apple system APIs through P/Invoke, compiled on every OS and called only on iOS/macOS. Untested here: this
/// workplace has no Apple hardware; the calls follow Apple's documented C/Objective-C ABI.
/// </summary>
internal static partial class AppleSystem
{
    private const string ObjC = "/usr/lib/libobjc.A.dylib";
    private const string LibSystem = "/usr/lib/libSystem.B.dylib";

    public static bool IsApple => OperatingSystem.IsIOS() || OperatingSystem.IsMacOS() || OperatingSystem.IsMacCatalyst();

    /// <summary>[[NSProcessInfo processInfo] thermalState]: 0 nominal … 3 critical; NaN if the call fails.</summary>
    public static double ThermalState()
    {
        if (!IsApple) return double.NaN;
        try
        {
            nint cls = objc_getClass("NSProcessInfo");
            if (cls == 0) return double.NaN;
            nint info = objc_msgSend(cls, sel_registerName("processInfo"));
            if (info == 0) return double.NaN;
            return objc_msgSend(info, sel_registerName("thermalState"));
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return double.NaN;
        }
    }

    /// <summary>os_proc_available_memory(): bytes the app may still allocate before jetsam (iOS 13+); NaN elsewhere.</summary>
    public static double AvailableMemoryBytes()
    {
        if (!OperatingSystem.IsIOS() && !OperatingSystem.IsMacCatalyst()) return double.NaN;
        try
        {
            return os_proc_available_memory();
        }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return double.NaN;
        }
    }

    [LibraryImport(ObjC, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint objc_getClass(string name);

    [LibraryImport(ObjC, StringMarshalling = StringMarshalling.Utf8)]
    private static partial nint sel_registerName(string name);

    [LibraryImport(ObjC)]
    private static partial nint objc_msgSend(nint receiver, nint selector);

    [LibraryImport(LibSystem)]
    private static partial nuint os_proc_available_memory();
}
