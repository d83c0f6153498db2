namespace MoeLab.Engine.Kernels;

/// <summary>A loop body run by <see cref="ComputePool.For(int, IParallelBody)"/> over index ranges [start, end).</summary>
public interface IParallelBody
{
    void Execute(int start, int end);
}
