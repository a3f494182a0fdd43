using System.Reflection;
using McMaster.NETCore.Plugins;
using Peft.Abstractions.Methods;
using Peft.Configuration;

namespace Peft.Host.Plugins;

/// <summary>A method the host can run, where it came from, and which build of its assembly it is.</summary>
public sealed record MethodEntry(string Name, IMethodFactory Factory, string Source, AssemblyBuild Build);

/// <summary>
/// One build of an assembly: its name, informational version (with the source revision when the build recorded one) and
/// the first 16 hex digits of the SHA-256 of its file, which changes whenever the plugin is rebuilt from other code.
/// </summary>
public sealed record AssemblyBuild(string Name, string Version, string ContentHash)
{
    public static AssemblyBuild Of(Assembly assembly, string path)
    {
        var version = assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
            ?? assembly.GetName().Version?.ToString() ?? "unversioned";
        using var file = File.OpenRead(path);
        var hash = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(file))[..16];
        return new(assembly.GetName().Name ?? Path.GetFileNameWithoutExtension(path), version, hash);
    }

    public override string ToString() => $"{Name} {Version} ({ContentHash})";
}

/// <summary>A plugin that could not be used, and why; the others keep working.</summary>
public sealed record PluginProblem(string Plugin, string Message);

/// <summary>
/// Every method the host knows: the built-in baselines and the factories found in plugin folders.
/// A plugin folder holds one folder per plugin (`Name/Name.dll` with its .deps.json, built with
/// EnableDynamicLoading), each loaded by McMaster.NETCore.Plugins into a load context of its own: the
/// contracts, TorchSharp and Microsoft.Extensions.* come from the host (one type on both sides), the
/// plugin's other dependencies and native libraries from its folder.
/// </summary>
public sealed class MethodCatalog
{
    private readonly Dictionary<string, MethodEntry> _methods = new(StringComparer.Ordinal);
    private readonly List<PluginProblem> _problems = [];

    public IReadOnlyDictionary<string, MethodEntry> Methods => _methods;
    public IReadOnlyList<PluginProblem> Problems => _problems;

    /// <summary>The plugin folders that were searched, in order (full paths).</summary>
    public IReadOnlyList<string> SearchedFolders { get; private set; } = [];

    /// <summary>Method names that plugins claim but that cannot be used (two claim one name), with the reason.</summary>
    public IReadOnlyDictionary<string, string> Unavailable => _ambiguous;

    /// <summary>
    /// The contracts version of this host (Peft.Abstractions and Peft.Configuration, versioned together). A plugin
    /// loads when it was built against the same major version and a minor version no newer than this.
    /// </summary>
    public static Version ContractsVersion => typeof(IMethodFactory).Assembly.GetName().Version!;

    /// <summary>The contract assemblies whose versions <see cref="ContractsVersion"/> names.</summary>
    public static readonly string[] ContractAssemblies =
        [typeof(IMethodFactory).Assembly.GetName().Name!, typeof(IHyperParameters).Assembly.GetName().Name!];

    /// <summary>Types whose assemblies a plugin must share with the host.</summary>
    public static readonly Type[] SharedTypes =
    [
        typeof(IMethodFactory), typeof(IHyperParameters), typeof(TorchSharp.torch),
        typeof(Microsoft.Extensions.Configuration.IConfiguration),
    ];

    public static MethodCatalog Discover(IEnumerable<Assembly> builtIn, IEnumerable<string> pluginFolders)
    {
        var catalog = new MethodCatalog();
        foreach (var assembly in builtIn)
            catalog.AddFactories(assembly, "built-in", AssemblyBuild.Of(assembly, assembly.Location));
        catalog.SearchedFolders = pluginFolders.Select(Path.GetFullPath).Distinct(StringComparer.Ordinal).ToList();
        foreach (var folder in catalog.SearchedFolders.Where(Directory.Exists))
        {
            foreach (var pluginDir in Directory.EnumerateDirectories(folder).Order(StringComparer.Ordinal))
                catalog.LoadPlugin(pluginDir);
            // An assembly dropped beside the plugin folders is never loaded: say so rather than ignore it.
            foreach (var stray in Directory.EnumerateFiles(folder, "*.dll").Order(StringComparer.Ordinal))
                catalog._problems.Add(new(Path.GetFileNameWithoutExtension(stray),
                    $"{stray} is not loaded: a plugin is a folder of its own, {Path.Combine(folder, Path.GetFileNameWithoutExtension(stray), Path.GetFileName(stray))}"));
        }
        return catalog;
    }

    /// <summary>The plugin folders (Name/Name.dll) inside <paramref name="folder"/>.</summary>
    public static IEnumerable<string> PluginDirectories(string folder) =>
        Directory.EnumerateDirectories(folder).Where(d => File.Exists(Path.Combine(d, Path.GetFileName(d) + ".dll")));

    /// <summary>Method name → its options record, for binding and the schema.</summary>
    public IReadOnlyDictionary<string, HyperParametersInfo> OptionsByMethod() =>
        _methods.ToDictionary(kv => kv.Key, kv => kv.Value.Factory.Options, StringComparer.Ordinal);

    private void LoadPlugin(string pluginDir)
    {
        var name = Path.GetFileName(pluginDir);
        var main = Path.Combine(pluginDir, name + ".dll");
        if (!File.Exists(main))
        {
            _problems.Add(new(name, $"plugin folder {pluginDir} has no {name}.dll (a plugin folder holds Name/Name.dll)"));
            return;
        }
        try
        {
            // PreferSharedTypes: any assembly the host has (its Microsoft.Extensions.*, System.*) is the host's copy.
            var loader = PluginLoader.CreateFromAssemblyFile(main, SharedTypes, config => config.PreferSharedTypes = true);
            var assembly = loader.LoadDefaultAssembly();
            CheckContracts(assembly, name);
            if (AddFactories(assembly, $"plugin {name} ({pluginDir})", AssemblyBuild.Of(assembly, main)) == 0)
                _problems.Add(new(name, $"plugin {name}: {main} holds no [PeftMethod] factory, so it adds no method"));
        }
        catch (PluginException e)
        {
            _problems.Add(new(name, e.Message));
        }
        catch (Exception e) when (e is FileNotFoundException or FileLoadException or BadImageFormatException)
        {
            _problems.Add(new(name, $"plugin {name} could not be loaded: {e.Message}"));
        }
    }

    /// <summary>A plugin built against other contracts would fail with type-load errors later; say so now.</summary>
    private static void CheckContracts(Assembly assembly, string plugin)
    {
        foreach (var reference in assembly.GetReferencedAssemblies())
        {
            if (!ContractAssemblies.Contains(reference.Name) || reference.Version is null) continue;
            if (Incompatibility(reference.Version, ContractsVersion) is { } reason)
                throw new PluginException($"plugin {plugin} was built against {reference.Name} {reference.Version}, but this host has {ContractsVersion}: {reason}");
        }
    }

    /// <summary>
    /// Semantic versioning of the contracts: a new minor version only adds to them, so a plugin built against the same
    /// major and an older or equal minor runs; a newer minor may use what this host lacks, another major was broken.
    /// </summary>
    public static string? Incompatibility(Version builtAgainst, Version host) =>
        builtAgainst.Major != host.Major
            ? $"another major version of the contracts; rebuild the plugin against {host.Major}.{host.Minor}"
            : builtAgainst.Minor > host.Minor
                ? $"a newer minor version than this host's; update the host, or rebuild the plugin against {host.Major}.{host.Minor}"
                : null;

    /// <summary>Adds the assembly's [PeftMethod] factories; returns how many it declares (usable or not).</summary>
    private int AddFactories(Assembly assembly, string source, AssemblyBuild build)
    {
        Type[] types;
        try
        {
            types = assembly.GetTypes();
        }
        catch (ReflectionTypeLoadException e)
        {
            var first = e.LoaderExceptions.FirstOrDefault(x => x is not null)?.Message ?? e.Message;
            throw new PluginException($"{source}: its types could not be loaded (missing or incompatible dependency?): {first}");
        }
        var declared = 0;
        foreach (var type in types)
        {
            if (type.GetCustomAttribute<PeftMethodAttribute>() is not { } attribute) continue;
            declared++;
            IMethodFactory factory;
            try
            {
                if (!typeof(IMethodFactory).IsAssignableFrom(type))
                    throw new PluginException($"{type.FullName} is marked [PeftMethod] but does not implement IMethodFactory");
                factory = (IMethodFactory)Activator.CreateInstance(type)!;
            }
            catch (TargetInvocationException e)
            {
                _problems.Add(new(source, $"{source}: creating {type.FullName} threw {e.InnerException?.GetType().Name}: {e.InnerException?.Message}"));
                continue;
            }
            catch (PluginException e)
            {
                _problems.Add(new(source, e.Message));
                continue;
            }
            if (_methods.TryGetValue(attribute.Name, out var existing))
            {
                // Neither claimant wins silently: the name is ambiguous, so both are set aside.
                var message = $"method '{attribute.Name}' is claimed by both {existing.Source} and {source}; neither is used";
                _problems.Add(new(source, message));
                _methods.Remove(attribute.Name);
                _ambiguous[attribute.Name] = message;
                continue;
            }
            if (_ambiguous.TryGetValue(attribute.Name, out var earlier))
            {
                _ambiguous[attribute.Name] = $"{earlier}, nor {source}'s";
                continue;
            }
            _methods[attribute.Name] = new MethodEntry(attribute.Name, factory, source, build);
        }
        return declared;
    }

    private readonly Dictionary<string, string> _ambiguous = new(StringComparer.Ordinal);
}

/// <summary>A plugin that cannot be used, with the reason.</summary>
public sealed class PluginException(string message) : Exception(message);
