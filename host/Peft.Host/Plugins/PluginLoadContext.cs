using System.Reflection;
using System.Runtime.Loader;

namespace Peft.Host.Plugins;

/// <summary>
/// One plugin's load context, resolving as McMaster.NETCore.Plugins does: the shared contracts from
/// the host first (so `IMethodFactory` is one type on both sides), then the plugin's own
/// dependency resolver (its .deps.json), then its folder. Native libraries resolve per plugin.
/// </summary>
public sealed class PluginLoadContext : AssemblyLoadContext
{
    /// <summary>Assemblies always taken from the host, never from a plugin's folder.</summary>
    public static bool IsShared(string name) =>
        name is "Peft.Abstractions" or "Peft.Torch" or "Peft.Configuration"
        || name.StartsWith("Microsoft.Extensions.", StringComparison.Ordinal)
        || name.StartsWith("System.", StringComparison.Ordinal)
        || name is "System" or "mscorlib" or "netstandard";

    private readonly AssemblyDependencyResolver _resolver;
    private readonly string _folder;

    public PluginLoadContext(string mainAssemblyPath) : base(Path.GetFileNameWithoutExtension(mainAssemblyPath), isCollectible: false)
    {
        MainAssemblyPath = Path.GetFullPath(mainAssemblyPath);
        _folder = Path.GetDirectoryName(MainAssemblyPath)!;
        _resolver = new AssemblyDependencyResolver(MainAssemblyPath);
    }

    public string MainAssemblyPath { get; }

    protected override Assembly? Load(AssemblyName name)
    {
        if (name.Name is { } simple && IsShared(simple))
        {
            // Unify with the host's copy; returning the Assembly (not null) keeps custom default contexts working.
            try { return Default.LoadFromAssemblyName(name); }
            catch (FileNotFoundException) { /* not in the host: let the plugin bring it */ }
        }
        if (_resolver.ResolveAssemblyToPath(name) is { } path && File.Exists(path))
            return LoadFromAssemblyPath(path);
        var local = Path.Combine(_folder, name.Name + ".dll");
        return File.Exists(local) ? LoadFromAssemblyPath(local) : null;
    }

    protected override nint LoadUnmanagedDll(string unmanagedDllName)
    {
        if (_resolver.ResolveUnmanagedDllToPath(unmanagedDllName) is { } path && File.Exists(path))
            return LoadUnmanagedDllFromPath(path);
        foreach (var candidate in new[] { unmanagedDllName, "lib" + unmanagedDllName + ".so", unmanagedDllName + ".so" })
        {
            var local = Path.Combine(_folder, candidate);
            if (File.Exists(local)) return LoadUnmanagedDllFromPath(local);
        }
        return 0;
    }
}
