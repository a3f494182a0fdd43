using System.Globalization;
using System.Reflection;
using System.Runtime.CompilerServices;
using Peft.Abstractions.Methods;
using Peft.Configuration;
using Peft.Host.Plugins;

namespace Peft.Host.Tests;

/// <summary>
/// Semantic versioning of the contracts (Peft.Abstractions and Peft.Configuration): abstractions/PublicApi/M.m.txt lists
/// the public API of version M.m. Changing that API without a new version fails here; a minor version may only add.
/// </summary>
public sealed class ContractsVersionTests
{
    private static readonly string Listings = Path.Combine(PeftProcess.RepoRoot, "abstractions", "PublicApi");

    private static Version Contracts => MethodCatalog.ContractsVersion;

    [Fact]
    public void The_contracts_public_api_is_the_listing_of_their_version()
    {
        var file = Path.Combine(Listings, $"{Contracts.Major}.{Contracts.Minor}.txt");
        var actual = PublicApi.Listing(typeof(IMethodFactory).Assembly, typeof(IHyperParameters).Assembly);
        var fresh = Path.Combine(PeftProcess.RepoRoot, "artifacts", "PublicApi", Path.GetFileName(file));
        Directory.CreateDirectory(Path.GetDirectoryName(fresh)!);
        File.WriteAllLines(fresh, actual);
        Assert.True(File.Exists(file), $"no public API listing for contracts {Contracts.ToString(2)}: copy {fresh} to {file}");
        var committed = File.ReadAllLines(file);
        var added = actual.Except(committed).ToList();
        var removed = committed.Except(actual).ToList();
        Assert.True(added.Count == 0 && removed.Count == 0,
            $"the contracts' public API is not the one listed for {Contracts.ToString(2)}. A change that only adds bumps the minor version, " +
            $"any other the major (PeftContractsVersion in Directory.Build.props); then copy {fresh} to abstractions/PublicApi/<major>.<minor>.txt.\n" +
            $"added:\n  {string.Join("\n  ", added)}\nremoved:\n  {string.Join("\n  ", removed)}");
    }

    [Fact]
    public void A_minor_version_only_adds_to_the_previous_one_and_no_listing_is_newer_than_the_contracts()
    {
        var versions = Directory.EnumerateFiles(Listings, "*.txt").Select(f => Version.Parse(Path.GetFileNameWithoutExtension(f))).Order().ToList();
        Assert.Equal(new Version(Contracts.Major, Contracts.Minor), versions[^1]);
        foreach (var (older, newer) in versions.Zip(versions.Skip(1)).Where(p => p.First.Major == p.Second.Major))
        {
            var missing = File.ReadAllLines(Path.Combine(Listings, $"{older}.txt")).Except(File.ReadAllLines(Path.Combine(Listings, $"{newer}.txt"))).ToList();
            Assert.True(missing.Count == 0, $"{newer} removes or changes what {older} has, so it needs a new major version:\n  {string.Join("\n  ", missing)}");
        }
    }

    [Fact]
    public void Both_contract_assemblies_and_the_package_readme_carry_the_contracts_version()
    {
        Assert.Equal(Contracts, typeof(IHyperParameters).Assembly.GetName().Version);
        Assert.True(Contracts.Major >= 1, "1.0 is the first version with the attention seam");
        var readme = File.ReadAllText(Path.Combine(PeftProcess.RepoRoot, "abstractions", "Peft.Abstractions", "PACKAGE.md"));
        Assert.Contains($"<PackageReference Include=\"Peft.Abstractions\" Version=\"{Contracts.ToString(3)}\" />", readme);
    }

    [Theory]
    [InlineData("1.0", "1.0", true)]
    [InlineData("1.0", "1.3", true)]   // built against an older minor: everything it uses is still there
    [InlineData("1.2", "1.3", true)]
    [InlineData("1.4", "1.3", false)]  // a newer minor may use what this host lacks
    [InlineData("0.1", "1.0", false)]  // another major was broken
    [InlineData("2.0", "1.3", false)]
    public void Plugins_load_when_built_against_the_same_major_and_an_older_or_equal_minor(string builtAgainst, string host, bool loads)
    {
        var reason = MethodCatalog.Incompatibility(Version.Parse(builtAgainst), Version.Parse(host));
        Assert.Equal(loads, reason is null);
    }
}

/// <summary>A public API listing: one line per public type and per public or protected member, sorted.</summary>
public static class PublicApi
{
    private const BindingFlags Declared = BindingFlags.Public | BindingFlags.NonPublic | BindingFlags.Instance | BindingFlags.Static | BindingFlags.DeclaredOnly;

    public static IReadOnlyList<string> Listing(params Assembly[] assemblies) =>
        assemblies.SelectMany(a => a.GetExportedTypes()).SelectMany(Lines).Distinct().Order(StringComparer.Ordinal).ToList();

    private static IEnumerable<string> Lines(Type type)
    {
        var name = Name(type);
        yield return $"{name}: {Kind(type)}{Bases(type)}";
        if (type.IsEnum)
        {
            foreach (var field in type.GetFields(BindingFlags.Public | BindingFlags.Static))
                yield return $"{name} :: {field.Name} = {Convert.ToInt64(field.GetRawConstantValue(), CultureInfo.InvariantCulture)}";
            yield break;
        }
        foreach (var member in type.GetMembers(Declared).Where(Visible))
            if (Line(member) is { } line)
                yield return $"{name} :: {line}";
    }

    private static bool Visible(MemberInfo member) => member switch
    {
        // Accessors are listed with their property or event; constructors and operators are special names too.
        MethodBase m => (m.IsPublic || m.IsFamily || m.IsFamilyOrAssembly)
                        && (!m.IsSpecialName || m is ConstructorInfo || m.Name.StartsWith("op_", StringComparison.Ordinal)),
        FieldInfo f => f.IsPublic || f.IsFamily || f.IsFamilyOrAssembly,
        PropertyInfo p => p.GetAccessors(nonPublic: true).Any(a => a.IsPublic || a.IsFamily || a.IsFamilyOrAssembly),
        EventInfo e => e.AddMethod is { } add && (add.IsPublic || add.IsFamily),
        Type t => t.IsNestedPublic || t.IsNestedFamily,
        _ => false,
    };

    private static string? Line(MemberInfo member) => member switch
    {
        ConstructorInfo c => $"{Modifiers(c)}.ctor({Parameters(c)})",
        MethodInfo m when m.Name.StartsWith("op_", StringComparison.Ordinal) => $"static {Name(m.ReturnType)} {m.Name}({Parameters(m)})",
        MethodInfo m => $"{Modifiers(m)}{Name(m.ReturnType)} {m.Name}{Generic(m)}({Parameters(m)})",
        PropertyInfo p => $"{(p.GetAccessors(true)[0].IsStatic ? "static " : "")}{Name(p.PropertyType)} {p.Name}{Indexer(p)} {{ {Accessors(p)}}}",
        FieldInfo f when f.IsLiteral => $"const {Name(f.FieldType)} {f.Name} = {Value(f.GetRawConstantValue())}",
        FieldInfo f => $"{(f.IsStatic ? "static " : "")}{(f.IsInitOnly ? "readonly " : "")}{Name(f.FieldType)} {f.Name}",
        EventInfo e => $"event {Name(e.EventHandlerType!)} {e.Name}",
        _ => null, // nested types are listed as types of their own
    };

    private static string Kind(Type t) =>
        t.IsInterface ? "interface"
        : t.IsEnum ? $"enum {Name(Enum.GetUnderlyingType(t))}"
        : t.IsValueType ? (t.IsDefined(typeof(IsReadOnlyAttribute)) ? "readonly struct" : "struct")
        : typeof(Delegate).IsAssignableFrom(t) ? "delegate"
        : t is { IsAbstract: true, IsSealed: true } ? "static class"
        : t.IsAbstract ? "abstract class" : t.IsSealed ? "sealed class" : "class";

    private static string Bases(Type t)
    {
        var bases = new List<string>();
        if (t.IsEnum) return "";
        if (t.BaseType is { } b && b != typeof(object) && b != typeof(ValueType) && !typeof(Delegate).IsAssignableFrom(t)) bases.Add(Name(b));
        bases.AddRange(t.GetInterfaces().Select(Name).Order(StringComparer.Ordinal));
        return bases.Count == 0 ? "" : " : " + string.Join(", ", bases);
    }

    private static string Modifiers(MethodBase m) =>
        (m.IsFamily || m.IsFamilyOrAssembly ? "protected " : "") + (m.IsStatic ? "static " : "") +
        (m.DeclaringType!.IsInterface ? (m.IsAbstract ? "" : "default ")
            : m.IsAbstract ? "abstract " : m.IsVirtual && !m.IsFinal ? "virtual " : "");

    private static string Accessors(PropertyInfo p)
    {
        var text = "";
        if (p.GetMethod is { } get && (get.IsPublic || get.IsFamily)) text += "get; ";
        if (p.SetMethod is { } set && (set.IsPublic || set.IsFamily))
            text += set.ReturnParameter.GetRequiredCustomModifiers().Contains(typeof(IsExternalInit)) ? "init; " : "set; ";
        return text;
    }

    private static string Indexer(PropertyInfo p) => p.GetIndexParameters() is { Length: > 0 } index ? $"[{string.Join(", ", index.Select(i => Name(i.ParameterType)))}]" : "";

    private static string Generic(MethodInfo m) => m.IsGenericMethodDefinition ? $"<{string.Join(", ", m.GetGenericArguments().Select(a => a.Name))}>" : "";

    private static string Parameters(MethodBase m) => string.Join(", ", m.GetParameters().Select(p =>
        $"{(p.IsOut ? "out " : p.ParameterType.IsByRef ? "ref " : "")}{Name(p.ParameterType)} {p.Name}{(p.HasDefaultValue ? $" = {Value(p.DefaultValue)}" : "")}"));

    private static string Value(object? value) => Convert.ToString(value, CultureInfo.InvariantCulture) ?? "null";

    private static string Name(Type t)
    {
        if (t.IsByRef) return Name(t.GetElementType()!);
        if (t.IsArray) return Name(t.GetElementType()!) + "[" + new string(',', t.GetArrayRank() - 1) + "]";
        if (t.IsGenericParameter) return t.Name;
        if (Nullable.GetUnderlyingType(t) is { } inner) return Name(inner) + "?";
        var name = t.IsNested ? Name(t.DeclaringType!) + "." + t.Name : $"{t.Namespace}.{t.Name}";
        if (!t.IsGenericType) return name;
        var arguments = t.GetGenericArguments().Skip(t.IsNested ? t.DeclaringType!.GetGenericArguments().Length : 0);
        return name[..name.IndexOf('`', StringComparison.Ordinal)] + "<" + string.Join(", ", arguments.Select(Name)) + ">";
    }
}
