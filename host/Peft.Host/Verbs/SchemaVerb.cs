using Microsoft.Extensions.Configuration;
using Peft.Host.Hosting;

namespace Peft.Host.Verbs;

/// <summary>`peft schema`: writes the JSON schema of every option (host and methods) that appsettings.json references.</summary>
public sealed class SchemaVerb(IConfiguration configuration, OptionsCatalog catalog) : IVerb
{
    public Task<int> RunAsync(CancellationToken cancellationToken)
    {
        var output = configuration["Schema:Output"] is { Length: > 0 } path ? path : OptionsCatalog.SchemaFileName;
        File.WriteAllText(output, catalog.JsonSchema());
        Console.WriteLine($"wrote {Path.GetFullPath(output)}");
        return Task.FromResult(ExitCodes.Success);
    }
}
