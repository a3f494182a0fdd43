using System.Collections;
using System.IO.Compression;
using System.Text;
using TorchSharp;
using TorchSharp.PyBridge;
using static TorchSharp.torch;

namespace Peft.Vision.Checkpoints;

/// <summary>
/// Official PyTorch checkpoints (<c>torch.save</c>'s zip format, PyTorch ≥ 1.6): MAE's <c>mae_pretrain_vit_base.pth</c>
/// (<c>{"model": state_dict}</c>), MoCo v3's <c>*.pth.tar</c> (<c>{"state_dict": ..., "optimizer": ..., "epoch": ...}</c>),
/// timm's <c>pytorch_model.bin</c> (a bare state dict). Read through TorchSharp.PyBridge, whose unpickler rebuilds
/// tensors and runs no code; before it sees the file, every global the pickle names is checked against what a state
/// dict needs (PyTorch's own <c>weights_only=True</c> rule), so a file naming anything else (<c>os.system</c>, a model
/// class) is refused by name and nothing of it is executed or even constructed.
/// </summary>
public static class PyTorchCheckpoint
{
    /// <summary>The globals a state dict's pickle may name: tensor and storage rebuilding, and OrderedDict.</summary>
    private static readonly HashSet<string> Allowed = new(StringComparer.Ordinal)
    {
        "collections.OrderedDict",
        "torch._utils._rebuild_tensor", "torch._utils._rebuild_tensor_v2", "torch._utils._rebuild_parameter",
        "torch.FloatStorage", "torch.DoubleStorage", "torch.HalfStorage", "torch.BFloat16Storage", "torch.LongStorage",
        "torch.IntStorage", "torch.ShortStorage", "torch.CharStorage", "torch.ByteStorage", "torch.BoolStorage",
    };

    /// <summary>Containers a training script wraps the state dict in, tried in this order.</summary>
    private static readonly string[] StateKeys = ["state_dict", "model", "module", "model_state"];

    /// <summary>True when the file is a zip holding a pickle (<c>data.pkl</c>): torch.save's format.</summary>
    public static bool IsTorchZip(ZipArchive zip) => zip.Entries.Any(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal));

    /// <summary>
    /// The file's tensors by key: the state dict found under <c>state_dict</c>, <c>model</c>, ... or at the top.
    /// </summary>
    /// <exception cref="UnsafeCheckpointException">The pickle names a global that is not tensor rebuilding (an IOException).</exception>
    /// <exception cref="InvalidDataException">Not a zip torch.save file (a legacy one says how to re-save it), or corrupt.</exception>
    /// <param name="maxBytes">Largest total of the zip's members (uncompressed, as its directory declares them), checked before unpickling.</param>
    public static Dictionary<string, Tensor> Read(string path, long maxBytes = Peft.Engine.Formats.TensorFiles.DefaultMaxBytes)
    {
        using var stream = File.OpenRead(path);
        Span<byte> magic = stackalloc byte[4];
        var read = stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false);
        if (read < 4 || !magic.SequenceEqual("PK\x03\x04"u8))
            throw new InvalidDataException(read > 0 && magic[0] == 0x80
                ? $"{path}: a legacy (pre-1.6, non-zip) torch.save file, which TorchSharp cannot read. Re-save it with PyTorch ≥ 1.6: "
                  + "torch.save(torch.load(path, weights_only=True), path) writes the zip format."
                : $"{path}: not a torch.save zip file");
        stream.Position = 0;

        using (var zip = new ZipArchive(stream, ZipArchiveMode.Read, leaveOpen: true))
        {
            var pickle = zip.Entries.FirstOrDefault(e => e.FullName.EndsWith("data.pkl", StringComparison.Ordinal))
                ?? throw new InvalidDataException($"{path}: a zip without data.pkl, not a torch.save file");
            var declared = zip.Entries.Sum(e => e.Length);
            if (declared > maxBytes)
                throw new InvalidDataException($"{path}: its members declare {declared} bytes, above the limit of {maxBytes} bytes; nothing was read");
            using var pkl = pickle.Open();
            List<string> globals;
            try
            {
                globals = PickleGlobals.Read(pkl);
            }
            catch (Exception e) when (e is InvalidDataException or EndOfStreamException or OverflowException or FormatException)
            {
                throw new InvalidDataException($"{path}: its pickle cannot be read: {e.Message}", e);
            }
            var refused = globals.Where(g => !Allowed.Contains(g)).Distinct().ToList();
            if (refused.Count > 0)
                throw new UnsafeCheckpointException(path, refused);
        }
        stream.Position = 0;

        Hashtable top;
        try
        {
            top = PyTorchUnpickler.UnpickleStateDict(stream, leaveOpen: true);
        }
        catch (Exception e) when (e is NotImplementedException or InvalidCastException or InvalidDataException or KeyNotFoundException
                                      or InvalidOperationException or EndOfStreamException or Razorvine.Pickle.PickleException
                                      or System.Runtime.InteropServices.ExternalException)
        {
            // PyBridge rebuilds each tensor from the start of its storage: a view at an offset, or a strided one, fails
            // in libtorch (ExternalException) or TorchSharp (InvalidOperationException) rather than reading wrong bytes.
            var hint = e is InvalidOperationException or System.Runtime.InteropServices.ExternalException
                ? " (TorchSharp.PyBridge reads tensors that are contiguous and start their storage: re-save the state dict with "
                  + "{k: v.contiguous().clone() for k, v in state.items()}, or convert it to safetensors)"
                : "";
            throw new InvalidDataException($"{path}: cannot read this torch.save file: {e.Message}{hint}", e);
        }
        var state = StateKeys.Select(k => top[k]).OfType<IDictionary>().FirstOrDefault() ?? top;
        var tensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (DictionaryEntry entry in state)
            if (entry is { Key: string key, Value: Tensor t }) tensors[key] = t;
        // Tensors of the other containers (an optimizer's state) are not the model's.
        foreach (var other in top.Values.OfType<IDictionary>().Where(d => !ReferenceEquals(d, state)))
            DisposeTensors(other);
        if (tensors.Count == 0)
            throw new InvalidDataException($"{path}: no tensors found at the top or under {string.Join(", ", StateKeys.Select(k => $"'{k}'"))}");
        return tensors;
    }

    private static void DisposeTensors(IDictionary dictionary)
    {
        foreach (var value in dictionary.Values)
            if (value is Tensor t) t.Dispose();
            else if (value is IDictionary nested) DisposeTensors(nested);
    }

    /// <summary>
    /// Walks a pickle's opcodes (protocols 0–5) without executing any and lists the globals it names: GLOBAL's inline
    /// "module name", INST's class, and STACK_GLOBAL's two strings (which must be literal or memoised strings).
    /// </summary>
    internal static class PickleGlobals
    {
        public static List<string> Read(Stream pickle)
        {
            var reader = new BinaryReader(pickle, Encoding.Latin1, leaveOpen: true);
            var globals = new List<string>();
            var memo = new Dictionary<long, object?>();
            var recent = new List<object?>(); // what was pushed last, strings as strings (for STACK_GLOBAL)
            while (true)
            {
                int op;
                try { op = reader.ReadByte(); }
                catch (EndOfStreamException) { throw new InvalidDataException("the pickle ends without STOP"); }
                switch (op)
                {
                    case '.': return globals;                                            // STOP
                    case 'c':                                                            // GLOBAL module\nname\n
                    case 'i':                                                            // INST module\nname\n
                        globals.Add(Line(reader) + "." + Line(reader));
                        Push(recent, null);
                        break;
                    case 0x93:                                                           // STACK_GLOBAL
                        if (recent.Count < 2 || recent[^2] is not string module || recent[^1] is not string name)
                            throw new InvalidDataException("the pickle builds a global from computed names");
                        globals.Add(module + "." + name);
                        Push(recent, null);
                        break;
                    // Strings: remembered for STACK_GLOBAL.
                    case 'X': Push(recent, Utf8(reader, reader.ReadInt32())); break;     // BINUNICODE
                    case 0x8c: Push(recent, Utf8(reader, reader.ReadByte())); break;     // SHORT_BINUNICODE
                    case 0x8d: Push(recent, Utf8(reader, checked((int)reader.ReadInt64()))); break; // BINUNICODE8
                    case 'V': Push(recent, Line(reader)); break;                          // UNICODE (raw-unicode-escape)
                    case 'S': Push(recent, Line(reader)); break;                          // STRING
                    case 'T': Push(recent, Latin1(reader, reader.ReadInt32())); break;    // BINSTRING
                    case 'U': Push(recent, Latin1(reader, reader.ReadByte())); break;     // SHORT_BINSTRING
                    // Memo: what a string was stored as is what a later GET pushes.
                    case 'p': memo[long.Parse(Line(reader), System.Globalization.CultureInfo.InvariantCulture)] = Top(recent); break; // PUT
                    case 'q': memo[reader.ReadByte()] = Top(recent); break;              // BINPUT
                    case 'r': memo[reader.ReadUInt32()] = Top(recent); break;            // LONG_BINPUT
                    case 0x94: memo[memo.Count] = Top(recent); break;                    // MEMOIZE
                    case 'g': Push(recent, memo.GetValueOrDefault(long.Parse(Line(reader), System.Globalization.CultureInfo.InvariantCulture))); break; // GET
                    case 'h': Push(recent, memo.GetValueOrDefault(reader.ReadByte())); break;   // BINGET
                    case 'j': Push(recent, memo.GetValueOrDefault(reader.ReadUInt32())); break; // LONG_BINGET
                    // Opcodes with arguments to skip.
                    case 0x80: reader.ReadByte(); break;                                 // PROTO
                    case 0x95: reader.ReadInt64(); break;                                // FRAME
                    case 'I': case 'L': case 'F': Line(reader); Push(recent, null); break; // INT, LONG, FLOAT (text)
                    case 'P': Line(reader); Push(recent, null); break;                   // PERSID
                    case 'J': reader.ReadInt32(); Push(recent, null); break;             // BININT
                    case 'K': reader.ReadByte(); Push(recent, null); break;              // BININT1
                    case 'M': reader.ReadUInt16(); Push(recent, null); break;            // BININT2
                    case 'G': reader.ReadDouble(); Push(recent, null); break;            // BINFLOAT
                    case 0x8a: Skip(reader, reader.ReadByte()); Push(recent, null); break;  // LONG1
                    case 0x8b: Skip(reader, reader.ReadInt32()); Push(recent, null); break; // LONG4
                    case 'B': Skip(reader, reader.ReadInt32()); Push(recent, null); break;  // BINBYTES
                    case 'C': Skip(reader, reader.ReadByte()); Push(recent, null); break;   // SHORT_BINBYTES
                    case 0x8e: Skip(reader, reader.ReadInt64()); Push(recent, null); break; // BINBYTES8
                    case 0x96: Skip(reader, reader.ReadInt64()); Push(recent, null); break; // BYTEARRAY8
                    case 0x82: reader.ReadByte(); Push(recent, null); break;             // EXT1
                    case 0x83: reader.ReadUInt16(); Push(recent, null); break;           // EXT2
                    case 0x84: reader.ReadInt32(); Push(recent, null); break;            // EXT4
                    // Opcodes without arguments: structure only.
                    case '(': case ')': case ']': case '}': case 'N': case 0x88: case 0x89: case 0x8f: case 'Q':
                    case 'R': case 'b': case 'a': case 'e': case 's': case 'u': case 't': case 0x85: case 0x86: case 0x87:
                    case 'l': case 'd': case 'o': case 0x81: case 0x92: case 0x90: case 0x91: case '0': case '1': case '2':
                    case 0x97: case 0x98:
                        Push(recent, null);
                        break;
                    default:
                        throw new InvalidDataException($"unknown pickle opcode 0x{op:x2}");
                }
            }
        }

        private static void Push(List<object?> recent, object? value)
        {
            recent.Add(value);
            if (recent.Count > 8) recent.RemoveAt(0);
        }

        private static object? Top(List<object?> recent) => recent.Count > 0 ? recent[^1] : null;

        private static string Line(BinaryReader reader)
        {
            var sb = new StringBuilder();
            for (var c = reader.ReadChar(); c != '\n'; c = reader.ReadChar()) sb.Append(c);
            return sb.ToString();
        }

        private static string Utf8(BinaryReader reader, int length) => Encoding.UTF8.GetString(reader.ReadBytes(length));
        private static string Latin1(BinaryReader reader, int length) => Encoding.Latin1.GetString(reader.ReadBytes(length));

        private static void Skip(BinaryReader reader, long length)
        {
            for (var left = length; left > 0; left -= int.MaxValue) reader.ReadBytes((int)Math.Min(left, int.MaxValue));
        }
    }
}

/// <summary>A pickle that names globals a state dict does not need; it was not executed.</summary>
public sealed class UnsafeCheckpointException(string path, IReadOnlyList<string> globals) : IOException(
    $"{path}: refused: its pickle names {string.Join(", ", globals)}, which is not tensor rebuilding; loading it could run code. "
    + "Nothing in it was executed. Save only the state dict (torch.save(model.state_dict(), path)) or convert it to safetensors.")
{
    public IReadOnlyList<string> Globals { get; } = globals;
}
