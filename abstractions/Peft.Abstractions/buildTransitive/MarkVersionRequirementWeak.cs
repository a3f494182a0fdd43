// An MSBuild task (compiled by RoslynCodeTaskFactory, see Peft.LibTorchSharp.targets): marks one symbol-version requirement
// of ELF shared libraries weak, so that the dynamic loader accepts them where the system library lacks that version.
using System;
using System.IO;
using System.Linq;
using System.Text;
using Microsoft.Build.Framework;
using Microsoft.Build.Utilities;

public sealed class PeftMarkVersionRequirementWeak : Task
{
    /// <summary>The shared libraries to fix up (missing ones are skipped).</summary>
    [Required] public ITaskItem[] Files { get; set; }

    /// <summary>The library that should provide the version, e.g. libstdc++.so.6.</summary>
    [Required] public string Library { get; set; }

    /// <summary>The version requirement to mark weak, e.g. GLIBCXX_3.4.32.</summary>
    [Required] public string Version { get; set; }

    private const uint ShtGnuVerneed = 0x6ffffffe;
    private const ushort VerFlgWeak = 0x2;

    // Where distributions put the system libraries (multiarch Debian/Ubuntu, then the others).
    private static readonly string[] LibraryFolders =
    {
        "/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu", "/usr/lib/aarch64-linux-gnu",
        "/usr/lib64", "/lib64", "/usr/lib", "/lib",
    };

    public override bool Execute()
    {
        var system = LibraryFolders.Select(f => Path.Combine(f, Library)).FirstOrDefault(File.Exists);
        if (system != null && Provides(system, Version))
        {
            Log.LogMessage(MessageImportance.Low, "{0} provides {1}: no fix-up needed", system, Version);
            return true;
        }
        foreach (var item in Files)
        {
            var path = item.GetMetadata("FullPath");
            if (!File.Exists(path)) continue;
            try
            {
                if (MarkWeak(path))
                    Log.LogMessage(MessageImportance.High, "{0}: marked its {1} requirement weak ({2} lacks it)", path, Version,
                        system ?? Library + " (not found)");
            }
            catch (Exception e) when (e is IOException || e is InvalidDataException || e is UnauthorizedAccessException)
            {
                Log.LogError("{0}: could not mark its {1} requirement weak: {2}", path, Version, e.Message);
            }
        }
        return !Log.HasLoggedErrors;
    }

    // A library that defines a symbol version holds its name, NUL-terminated, in its dynamic string table.
    private static bool Provides(string library, string version)
    {
        var bytes = File.ReadAllBytes(library);
        var needle = Encoding.ASCII.GetBytes(version + "\0");
        for (var at = Array.IndexOf(bytes, needle[0]); at >= 0 && at <= bytes.Length - needle.Length; at = Array.IndexOf(bytes, needle[0], at + 1))
        {
            var k = 1;
            while (k < needle.Length && bytes[at + k] == needle[k]) k++;
            if (k == needle.Length) return true;
        }
        return false;
    }

    /// <summary>Sets VER_FLG_WEAK on every Vernaux entry named <see cref="Version"/>; true when the file changed.</summary>
    private bool MarkWeak(string path)
    {
        var elf = File.ReadAllBytes(path);
        if (elf.Length < 64 || elf[0] != 0x7f || elf[1] != (byte)'E' || elf[2] != (byte)'L' || elf[3] != (byte)'F')
            throw new InvalidDataException("not an ELF file");
        if (elf[4] != 2 || elf[5] != 1) throw new InvalidDataException("not a 64-bit little-endian ELF file");

        var sectionTable = (long)U64(elf, 0x28);
        int sectionSize = U16(elf, 0x3A), sections = U16(elf, 0x3C);
        var changed = false;
        for (var s = 0; s < sections; s++)
        {
            var header = checked((int)(sectionTable + (long)s * sectionSize));
            if (U32(elf, header + 4) != ShtGnuVerneed) continue;
            var offset = checked((int)U64(elf, header + 24));
            var count = (int)U32(elf, header + 44);                       // sh_info: number of Verneed entries
            var strings = checked((int)(sectionTable + (long)U32(elf, header + 40) * sectionSize)); // sh_link: .dynstr
            var stringTable = checked((int)U64(elf, strings + 24));

            for (int n = 0, need = offset; n < count; n++)
            {
                int auxCount = U16(elf, need + 2), aux = need + (int)U32(elf, need + 8);
                for (var a = 0; a < auxCount; a++)
                {
                    var name = CString(elf, stringTable + (int)U32(elf, aux + 8));
                    var flags = U16(elf, aux + 4);
                    if (name == Version && (flags & VerFlgWeak) == 0)
                    {
                        var weak = (ushort)(flags | VerFlgWeak);
                        elf[aux + 4] = (byte)weak;
                        elf[aux + 5] = (byte)(weak >> 8);
                        changed = true;
                    }
                    aux += (int)U32(elf, aux + 12);
                }
                need += (int)U32(elf, need + 12);
            }
        }
        if (!changed) return false;

        // A new file renamed over the copy: a hard link into the NuGet cache is replaced, never written through.
        var temp = path + ".peft-weak.tmp";
        var stamp = File.GetLastWriteTimeUtc(path);
        File.WriteAllBytes(temp, elf);
        File.SetLastWriteTimeUtc(temp, stamp);
        File.Replace(temp, path, null); // rename(2) on Unix
        return true;
    }

    private static ushort U16(byte[] b, int at) => (ushort)(b[at] | b[at + 1] << 8);
    private static uint U32(byte[] b, int at) => (uint)(b[at] | b[at + 1] << 8 | b[at + 2] << 16 | b[at + 3] << 24);
    private static ulong U64(byte[] b, int at) => U32(b, at) | (ulong)U32(b, at + 4) << 32;

    private static string CString(byte[] b, int at)
    {
        var end = Array.IndexOf(b, (byte)0, at);
        if (end < 0) throw new InvalidDataException("unterminated string in the dynamic string table");
        return Encoding.ASCII.GetString(b, at, end - at);
    }
}
