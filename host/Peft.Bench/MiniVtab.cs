using System.Globalization;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Peft.Data;

namespace Peft.Bench;

/// <summary>One task of the mini VTAB-1k: its folder name, VTAB group, class count and how it is made.</summary>
public sealed record MiniVtabTask(string Name, VtabGroup Group, int Classes, string Description);

/// <summary>A grey 28 × 28 source image and its label.</summary>
public readonly record struct GreyImage(byte[] Pixels, int Label);

/// <summary>
/// The mini VTAB-1k: five tasks built from real data that installs from Debian, written in the VTAB-1k "processed"
/// layout (train800 / val200 / train800val200 / test lists, benchmarks reference §4.1) so the ordinary VTAB loader
/// reads them. Every image is 28 × 28 grey (PGM). Train and validation images come from the sources' training
/// splits, test images from their test splits (digits: a disjoint remainder), so no test image is ever seen in training.
/// </summary>
public static class MiniVtab
{
    public const int Size = 28;
    public const int Version = 1;

    public static readonly IReadOnlyList<MiniVtabTask> Tasks =
    [
        new("fmnist_unseen", VtabGroup.Natural, 5,
            "Fashion-MNIST classes 5-9 (sandal, shirt, sneaker, bag, ankle boot), none seen in pre-training"),
        new("digits", VtabGroup.Natural, 10,
            "scikit-learn's 8x8 handwritten digits (UCI optdigits, grey levels 0-16), upsampled to 24x24 and framed to 28x28"),
        new("rotation", VtabGroup.Structured, 4,
            "a Fashion-MNIST item (any class) rotated by 0, 90, 180 or 270 degrees: predict the rotation"),
        new("position", VtabGroup.Structured, 9,
            "a half-size Fashion-MNIST item at one of 3x3 positions (offsets 0, 7, 14 px) on a black canvas: predict the position"),
        new("count", VtabGroup.Structured, 4,
            "1 to 4 half-size Fashion-MNIST items, one per chosen quadrant of a black canvas: predict how many"),
    ];

    public const int TestPerStructuredTask = 1000;
    public const int FashionTestPerClass = 400;

    /// <summary>
    /// Builds every task under <paramref name="root"/> unless a manifest with the same key is already there.
    /// Returns the manifest key.
    /// </summary>
    public static string Build(string root, string fashionMnistDirectory, string digitsCsvGz, int seed, Action<string>? log = null)
    {
        var fashionTrain = FashionMnist.Train(fashionMnistDirectory);
        var fashionTest = FashionMnist.Test(fashionMnistDirectory);
        var digits = ReadDigits(digitsCsvGz);
        var key = string.Join("|", $"v{Version}", seed, fashionTrain.Count, fashionTest.Count, digits.Count, new FileInfo(digitsCsvGz).Length);
        var manifest = Path.Combine(root, "manifest.json");
        if (File.Exists(manifest) && JsonDocument.Parse(File.ReadAllText(manifest)).RootElement.GetProperty("key").GetString() == key)
        {
            log?.Invoke($"mini VTAB-1k tasks in {root} are up to date");
            return key;
        }
        static GreyImage[] All(IdxDataset d) => [.. Enumerable.Range(0, d.Count).Select(i => new GreyImage(d.Pixels(i).ToArray(), d.Label(i)))];
        var sources = new Sources(All(fashionTrain), All(fashionTest), digits);
        foreach (var task in Tasks)
        {
            var splits = MakeSplits(task.Name, sources, seed);
            Write(Path.Combine(root, task.Name), splits);
            log?.Invoke($"{task.Name}: {splits.Train800.Count} + {splits.Val200.Count} training, {splits.Test.Count} test images");
        }
        File.WriteAllText(manifest, JsonSerializer.Serialize(new
        {
            key, seed, version = Version,
            tasks = Tasks.Select(t => new { t.Name, group = t.Group.ToString(), t.Classes, t.Description }),
        }, new JsonSerializerOptions { WriteIndented = true }));
        return key;
    }

    /// <summary>The images the tasks draw from: Fashion-MNIST's two splits and the digits.</summary>
    public sealed record Sources(IReadOnlyList<GreyImage> FashionTrain, IReadOnlyList<GreyImage> FashionTest, IReadOnlyList<GreyImage> Digits);

    public sealed record Splits(IReadOnlyList<GreyImage> Train800, IReadOnlyList<GreyImage> Val200, IReadOnlyList<GreyImage> Test);

    /// <summary>One task's three splits, deterministic per seed.</summary>
    public static Splits MakeSplits(string task, Sources sources, int seed)
    {
        var rng = new Random(unchecked(seed * 7919 + StableHash(task))); // HashCode.Combine is randomised per process
        switch (task)
        {
            case "fmnist_unseen":
            {
                int[] classes = [5, 6, 7, 8, 9];
                var train = PerClass(sources.FashionTrain, classes, 200, rng);
                var (train800, val200) = SplitPerClass(train, classes.Length, 160);
                return new Splits(train800, val200, PerClass(sources.FashionTest, classes, FashionTestPerClass, rng));
            }
            case "digits":
            {
                int[] classes = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9];
                var shuffled = Shuffle(sources.Digits.ToArray(), rng);
                var train = PerClass(shuffled, classes, 100, rng);
                var used = train.Select(g => g.Pixels).ToHashSet(ReferenceEqualityComparer.Instance);
                var test = shuffled.Where(g => !used.Contains(g.Pixels)).ToArray();
                var (train800, val200) = SplitPerClass(train, classes.Length, 80);
                return new Splits(train800, val200, test);
            }
            case "rotation":
            case "position":
            case "count":
            {
                var classes = Tasks.Single(t => t.Name == task).Classes;
                Func<Random, IReadOnlyList<GreyImage>, int, byte[]> render = task switch
                {
                    "rotation" => (r, pool, label) => Rotate(Pick(r, pool), label),
                    "position" => (r, pool, label) => Place(Half(Pick(r, pool)), label / 3 * 7, label % 3 * 7),
                    _ => (r, pool, label) => Count(r, pool, label + 1),
                };
                // Train and val images come from Fashion-MNIST's training split, test images from its test split.
                IReadOnlyList<GreyImage> Make(IReadOnlyList<GreyImage> pool, int n) =>
                    Shuffle(Enumerable.Range(0, n).Select(i => new GreyImage(render(rng, pool, i % classes), i % classes)).ToArray(), rng);
                return new Splits(Make(sources.FashionTrain, 800), Make(sources.FashionTrain, 200), Make(sources.FashionTest, TestPerStructuredTask));
            }
            default:
                throw new ArgumentException($"unknown mini VTAB task '{task}'; known: {string.Join(", ", Tasks.Select(t => t.Name))}", nameof(task));
        }
    }

    /// <summary>The item rotated counter-clockwise by quarter turns.</summary>
    public static byte[] Rotate(byte[] image, int quarterTurns)
    {
        var output = image;
        for (var t = 0; t < quarterTurns % 4; t++)
        {
            var next = new byte[Size * Size];
            for (var y = 0; y < Size; y++)
            for (var x = 0; x < Size; x++)
                next[(Size - 1 - x) * Size + y] = output[y * Size + x]; // (y, x) → (S−1−x, y): 90° counter-clockwise
            output = next;
        }
        return output == image ? (byte[])image.Clone() : output;
    }

    /// <summary>The 14 × 14 half-size image: the mean of each 2 × 2 block, rounded.</summary>
    public static byte[] Half(byte[] image)
    {
        const int h = Size / 2;
        var output = new byte[h * h];
        for (var y = 0; y < h; y++)
        for (var x = 0; x < h; x++)
        {
            var sum = image[2 * y * Size + 2 * x] + image[2 * y * Size + 2 * x + 1] + image[(2 * y + 1) * Size + 2 * x] + image[(2 * y + 1) * Size + 2 * x + 1];
            output[y * h + x] = (byte)((sum + 2) / 4);
        }
        return output;
    }

    /// <summary>A black canvas with a 14 × 14 item drawn at (top, left) (brighter pixel wins where items meet).</summary>
    public static byte[] Place(byte[] half, int top, int left, byte[]? canvas = null)
    {
        const int h = Size / 2;
        canvas ??= new byte[Size * Size];
        for (var y = 0; y < h; y++)
        for (var x = 0; x < h; x++)
        {
            ref var p = ref canvas[(top + y) * Size + left + x];
            p = Math.Max(p, half[y * h + x]);
        }
        return canvas;
    }

    private static byte[] Count(Random rng, IReadOnlyList<GreyImage> pool, int count)
    {
        var quadrants = Shuffle(new[] { 0, 1, 2, 3 }, rng);
        var canvas = new byte[Size * Size];
        foreach (var q in quadrants.Take(count)) Place(Half(Pick(rng, pool)), q / 2 * 14, q % 2 * 14, canvas);
        return canvas;
    }

    private static byte[] Pick(Random rng, IReadOnlyList<GreyImage> pool) => pool[rng.Next(pool.Count)].Pixels;

    /// <summary>Digits: grey levels 0–16 scaled to 0–255, bilinear 8 → 24 (half-pixel centres), 2-pixel black frame.</summary>
    public static byte[] RenderDigit(ReadOnlySpan<byte> levels8x8)
    {
        const int src = 8, dst = 24, pad = (Size - dst) / 2;
        var output = new byte[Size * Size];
        for (var y = 0; y < dst; y++)
        for (var x = 0; x < dst; x++)
        {
            static (int I0, int I1, double W) Coord(int o)
            {
                var s = Math.Clamp((o + 0.5) * src / dst - 0.5, 0, src - 1);
                var i0 = (int)Math.Floor(s);
                return (i0, Math.Min(i0 + 1, src - 1), s - i0);
            }
            var (y0, y1, wy) = Coord(y);
            var (x0, x1, wx) = Coord(x);
            var v = (1 - wy) * ((1 - wx) * levels8x8[y0 * src + x0] + wx * levels8x8[y0 * src + x1])
                    + wy * ((1 - wx) * levels8x8[y1 * src + x0] + wx * levels8x8[y1 * src + x1]);
            output[(y + pad) * Size + x + pad] = (byte)Math.Round(v * 255.0 / 16.0);
        }
        return output;
    }

    /// <summary>scikit-learn's digits.csv.gz: 1,797 lines of 64 grey levels (0–16) and the digit.</summary>
    public static IReadOnlyList<GreyImage> ReadDigits(string csvGz)
    {
        if (!File.Exists(csvGz))
            throw new FileNotFoundException($"{csvGz} not found: it ships in Debian's python3-sklearn package " +
                "(scripts/bench-data.sh extracts it without installing the package)", csvGz);
        using var reader = new StreamReader(new GZipStream(File.OpenRead(csvGz), CompressionMode.Decompress));
        var images = new List<GreyImage>();
        var lineNumber = 0;
        while (reader.ReadLine() is { } line)
        {
            lineNumber++;
            if (line.Length == 0) continue;
            var fields = line.Split(',');
            if (fields.Length != 65) throw new InvalidDataException($"{csvGz}:{lineNumber}: expected 65 comma-separated values, found {fields.Length}");
            var levels = new byte[64];
            for (var i = 0; i < 64; i++)
            {
                var v = double.Parse(fields[i], CultureInfo.InvariantCulture);
                if (v is < 0 or > 16) throw new InvalidDataException($"{csvGz}:{lineNumber}: grey level {v} outside 0-16");
                levels[i] = (byte)v;
            }
            var label = (int)double.Parse(fields[64], CultureInfo.InvariantCulture);
            if (label is < 0 or > 9) throw new InvalidDataException($"{csvGz}:{lineNumber}: digit {label} outside 0-9");
            images.Add(new GreyImage(RenderDigit(levels), label));
        }
        return images;
    }

    /// <summary>Writes the VTAB-1k processed layout: images/&lt;split&gt;/000000.pgm and the four list files.</summary>
    public static void Write(string taskDirectory, Splits splits)
    {
        if (Directory.Exists(taskDirectory)) Directory.Delete(taskDirectory, recursive: true);
        var lists = new Dictionary<string, List<string>>();
        foreach (var (split, images) in new[] { ("train800", splits.Train800), ("val200", splits.Val200), ("test", splits.Test) })
        {
            var dir = Path.Combine(taskDirectory, "images", split);
            Directory.CreateDirectory(dir);
            var lines = lists[split] = [];
            for (var i = 0; i < images.Count; i++)
            {
                var name = $"{i:D6}.pgm";
                WritePgm(Path.Combine(dir, name), images[i].Pixels);
                lines.Add($"images/{split}/{name} {images[i].Label}");
            }
        }
        foreach (var (split, lines) in lists) File.WriteAllLines(Path.Combine(taskDirectory, split + ".txt"), lines);
        File.WriteAllLines(Path.Combine(taskDirectory, "train800val200.txt"), lists["train800"].Concat(lists["val200"]));
    }

    private static void WritePgm(string path, byte[] pixels)
    {
        using var file = File.Create(path);
        file.Write(Encoding.ASCII.GetBytes($"P5\n{Size} {Size}\n255\n"));
        file.Write(pixels);
    }

    private static List<GreyImage> PerClass(IReadOnlyList<GreyImage> pool, int[] classes, int perClass, Random rng)
    {
        var picked = new List<GreyImage>();
        for (var c = 0; c < classes.Length; c++)
        {
            var members = pool.Where(g => g.Label == classes[c]).ToArray();
            if (members.Length < perClass) throw new InvalidDataException($"class {classes[c]} has {members.Length} images, {perClass} needed");
            picked.AddRange(Shuffle(members, rng).Take(perClass).Select(g => g with { Label = c }));
        }
        return picked;
    }

    /// <summary>Per relabelled class: the first <paramref name="trainPerClass"/> images to train800, the rest to val200.</summary>
    private static (GreyImage[] Train, GreyImage[] Val) SplitPerClass(List<GreyImage> picked, int classes, int trainPerClass)
    {
        var train = new List<GreyImage>();
        var val = new List<GreyImage>();
        for (var c = 0; c < classes; c++)
        {
            var members = picked.Where(g => g.Label == c).ToArray();
            train.AddRange(members.Take(trainPerClass));
            val.AddRange(members.Skip(trainPerClass));
        }
        return ([.. train], [.. val]);
    }

    private static T[] Shuffle<T>(T[] items, Random rng)
    {
        rng.Shuffle(items);
        return items;
    }

    private static int StableHash(string s) => s.Aggregate(17, (h, c) => unchecked(h * 31 + c));
}
