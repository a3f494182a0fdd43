namespace Peft.Torch;

/// <summary>
/// Owns every tensor created on this thread while it is the innermost scope, and releases those it
/// still owns when disposed (TorchSharp's NewDisposeScope idea). A training step opens one, so its
/// intermediates are freed deterministically; results that must outlive the step are moved out.
/// </summary>
public sealed class DisposeScope : IDisposable
{
    [ThreadStatic] private static DisposeScope? s_current;

    private readonly DisposeScope? _outer;
    private readonly List<Tensor> _owned = new();
    private bool _disposed;

    internal DisposeScope()
    {
        _outer = s_current;
        s_current = this;
    }

    internal static DisposeScope? Current => s_current;

    /// <summary>Number of live tensors this scope still owns.</summary>
    public int Count => _owned.Count(t => t.OwningScope == this && !t.IsDisposed);

    internal void Attach(Tensor t)
    {
        t.OwningScope = this;
        _owned.Add(t);
    }

    /// <summary>Hands <paramref name="t"/> to the enclosing scope (or to no scope) and returns it.</summary>
    public T MoveToOuter<T>(T t) where T : Tensor
    {
        if (t.OwningScope == this)
        {
            t.OwningScope = null;
            _outer?.Attach(t);
        }
        return t;
    }

    /// <summary>Detaches <paramref name="t"/> from every scope: the caller now owns it.</summary>
    public static T Detach<T>(T t) where T : Tensor
    {
        t.OwningScope = null;
        return t;
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var t in _owned)
            if (t.OwningScope == this)
            {
                t.OwningScope = null;
                t.Dispose();
            }
        _owned.Clear();
        // Scopes nest strictly per thread; restore the one that was current when this one opened.
        if (s_current == this) s_current = _outer;
    }
}

public partial class Tensor
{
    /// <summary>Moves this tensor to the enclosing dispose scope (or out of all scopes).</summary>
    public Tensor MoveToOuterDisposeScope() => OwningScope is { } s ? s.MoveToOuter(this) : this;

    /// <summary>Takes this tensor out of every dispose scope; the caller disposes it.</summary>
    public Tensor DetachFromDisposeScope() => DisposeScope.Detach(this);
}
