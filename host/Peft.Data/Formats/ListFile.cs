using System.Globalization;

namespace Peft.Data;

/// <summary>One entry of a list file: a path relative to the list's dataset folder, its label, and its 1-based line.</summary>
public readonly record struct ListEntry(string RelativePath, int Label, int Line);

/// <summary>
/// Image list files with one <c>relative/path label</c> per line (VTAB-1k's train800.txt etc., NOAH's few-shot lists).
/// Parsers in the wild differ (split(), split(' '), rsplit(' ', 1)); we split on the LAST whitespace so paths may
/// contain spaces, trim CR/LF, and skip blank lines (benchmarks reference §4.1).
/// </summary>
public static class ListFile
{
    public static IReadOnlyList<ListEntry> Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: list file not found", path);
        var entries = new List<ListEntry>();
        var lineNumber = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNumber++;
            var line = raw.Trim();
            if (line.Length == 0) continue;
            var cut = line.AsSpan().LastIndexOfAny(" \t");
            if (cut <= 0)
                throw new DatasetFormatException(path, $"expected '<relative path> <label>', found '{Shorten(line)}'", lineNumber);
            var labelText = line.AsSpan(cut + 1);
            if (!int.TryParse(labelText, NumberStyles.None, CultureInfo.InvariantCulture, out var label))
                throw new DatasetFormatException(path, $"label '{labelText}' is not a non-negative integer", lineNumber);
            entries.Add(new ListEntry(line[..cut].TrimEnd(), label, lineNumber));
        }
        return entries;
    }

    private static string Shorten(string s) => s.Length <= 80 ? s : s[..77] + "...";
}
