using System.Buffers.Binary;

namespace Peft.Training.Tests;

/// <summary>
/// Reads a TensorBoard event file back as TensorBoard does: TFRecords (length, masked CRC-32C of the length, an
/// Event protobuf, masked CRC-32C of the data), every CRC checked, and the scalar summaries collected by tag.
/// </summary>
public static class TensorBoardFile
{
    public static Dictionary<string, List<(long Step, float Value)>> Scalars(string path)
    {
        var scalars = new Dictionary<string, List<(long, float)>>();
        var bytes = File.ReadAllBytes(path);
        for (var at = 0; at < bytes.Length;)
        {
            var length = checked((int)BinaryPrimitives.ReadUInt64LittleEndian(bytes.AsSpan(at)));
            Assert.Equal(Masked(bytes.AsSpan(at, 8)), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 8)));
            var data = bytes.AsSpan(at + 12, length);
            Assert.Equal(Masked(data), BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(at + 12 + length)));
            var e = Tensorboard.Event.Parser.ParseFrom(data.ToArray()); // the byte[] overload: TorchSharp's generated Event predates span parsing
            foreach (var value in e.Summary?.Value ?? [])
            {
                if (!scalars.TryGetValue(value.Tag, out var list)) scalars[value.Tag] = list = [];
                list.Add((e.Step, value.SimpleValue));
            }
            at += 12 + length + 4;
        }
        return scalars;
    }

    // TFRecord's checksum: CRC-32C (Castagnoli), rotated right by 15 and offset.
    private static uint Masked(ReadOnlySpan<byte> data)
    {
        var crc = ~0u;
        foreach (var b in data)
        {
            crc ^= b;
            for (var k = 0; k < 8; k++) crc = (crc & 1) != 0 ? (crc >> 1) ^ 0x82F63B78u : crc >> 1;
        }
        crc = ~crc;
        return ((crc >> 15) | (crc << 17)) + 0xa282ead8u;
    }
}
