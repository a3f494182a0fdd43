using Peft.Configuration;

namespace Peft.Host.Plugins;

/// <summary>Where method plugins are found besides the host's own plugins/ folder.</summary>
[HyperParameters("Plugins")]
[Description("Method plugins: folders searched besides the host's own plugins/ folder.")]
public sealed partial record PluginOptions
{
    [Description("Folders holding one folder per plugin (Name/Name.dll with its .deps.json, built with EnableDynamicLoading); a list, or one comma separated value.")]
    public List<string> Folders { get; init; } = [];

    /// <summary>A folder that does not exist, or holds no plugin, is a mistake (a typo, or a plugin's own folder named instead of its parent).</summary>
    partial void ValidateCustom(string path, List<ConfigIssue> issues)
    {
        var key = ConfigPath.Combine(path, nameof(Folders));
        foreach (var folder in Folders)
        {
            if (!Directory.Exists(folder))
                issues.Add(ConfigIssue.Custom(key, $"{key} names '{folder}', which is not a folder", folder));
            else if (!MethodCatalog.PluginDirectories(folder).Any())
            {
                var own = Path.Combine(folder, Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder))) + ".dll");
                issues.Add(ConfigIssue.Custom(key, $"{key} names '{folder}', which holds no plugin (a plugins folder holds one folder per plugin, Name/Name.dll)" +
                    (File.Exists(own) ? $"; {own} is a plugin itself: name its parent folder" : ""), folder));
            }
        }
    }
}
