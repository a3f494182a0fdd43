using Microsoft.Extensions.Configuration;
using Peft.Host.Hosting;
using Peft.Host.Plugins;
using Spectre.Console;

namespace Peft.Host.Verbs;

/// <summary>`peft methods [--describe]`: every method (built-in and plugins) and, with --describe, its options.</summary>
public sealed class MethodsVerb(IConfiguration configuration, MethodCatalog catalog) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var describe = configuration.GetValue("Methods:Describe", false);
        var table = new Table().AddColumns("Method", "Description", "From", "Build");
        foreach (var entry in catalog.Methods.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
            table.AddRow(Markup.Escape(entry.Name), Markup.Escape(entry.Factory.Description), Markup.Escape(entry.Source),
                Markup.Escape($"{entry.Build.Version} ({entry.Build.ContentHash})"));
        AnsiConsole.Write(table);

        if (describe)
            foreach (var entry in catalog.Methods.Values.OrderBy(m => m.Name, StringComparer.Ordinal))
            {
                AnsiConsole.MarkupLine($"\n[bold]{Markup.Escape(entry.Name)}[/]: Method:Options");
                var options = new Table().AddColumns("Option", "Type", "Default", "Range", "Description");
                foreach (var row in entry.Factory.Options.Describe())
                    options.AddRow(Markup.Escape(row.Name), Markup.Escape(row.Type), Markup.Escape(row.Default),
                        Markup.Escape(row.Range ?? ""), Markup.Escape(row.Description ?? ""));
                AnsiConsole.Write(options);
            }

        Console.WriteLine($"Plugin folders searched: {(catalog.SearchedFolders.Count == 0 ? "none" : string.Join(", ", catalog.SearchedFolders))}");
        foreach (var problem in catalog.Problems)
            Console.Error.WriteLine($"plugin problem: {problem.Message}");
        return Task.FromResult(ExitCodes.Success);
    }
}
