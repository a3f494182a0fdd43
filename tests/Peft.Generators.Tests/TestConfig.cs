using System.Text;
using Microsoft.Extensions.Configuration;
using Peft.Configuration;

namespace Peft.Generators.Tests;

/// <summary>Builds real IConfiguration instances the way the host does.</summary>
internal static class TestConfig
{
    public static IConfigurationRoot Json(string json) =>
        new ConfigurationBuilder().AddJsonStream(new MemoryStream(Encoding.UTF8.GetBytes(json))).Build();

    public static IConfigurationRoot CommandLine(params string[] args) =>
        new ConfigurationBuilder().AddCommandLine(args).Build();

    public static IEnumerable<string> Messages(this IEnumerable<ConfigIssue> issues) => issues.Select(issue => issue.Message);
}
