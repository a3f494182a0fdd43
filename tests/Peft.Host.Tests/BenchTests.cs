using System.IO.Compression;
using Peft.Abstractions.Backbone;
using Peft.Data;
using Peft.Bench;
using Peft.Host.Hosting;

namespace Peft.Host.Tests;

public sealed class MiniVtabTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-minivtab-");

    public void Dispose() => _dir.Delete(recursive: true);

    /// <summary>An asymmetric item: a bright L in the top-left, so every quarter turn is a different image.</summary>
    private static byte[] LShape()
    {
        var image = new byte[28 * 28];
        for (var y = 2; y < 20; y++) image[y * 28 + 3] = 200;
        for (var x = 3; x < 12; x++) image[19 * 28 + x] = 250;
        return image;
    }

    private static GreyImage[] Pool(byte[] image, int n = 3) => [.. Enumerable.Range(0, n).Select(_ => new GreyImage(image, 0))];

    private static MiniVtab.Sources Uniform(byte[] image) => new(Pool(image), Pool(image), Pool(image));

    [Fact]
    public void Rotation_labels_are_the_quarter_turns_applied()
    {
        var item = LShape();
        var splits = MiniVtab.MakeSplits("rotation", Uniform(item), seed: 3);
        Assert.Equal((800, 200, MiniVtab.TestPerStructuredTask), (splits.Train800.Count, splits.Val200.Count, splits.Test.Count));
        var turns = Enumerable.Range(0, 4).Select(k => MiniVtab.Rotate(item, k)).ToArray();
        Assert.Equal(4, turns.Select(Convert.ToBase64String).Distinct().Count());
        foreach (var image in splits.Train800.Concat(splits.Test))
            Assert.Equal(turns[image.Label], image.Pixels);
        // Balanced: 200 of each rotation in train800.
        Assert.All(splits.Train800.GroupBy(g => g.Label), g => Assert.Equal(200, g.Count()));
        // 90° counter-clockwise: the top-left pixel moves to the bottom-left.
        var dot = new byte[28 * 28];
        dot[0] = 9;
        Assert.Equal(9, MiniVtab.Rotate(dot, 1)[27 * 28]);
    }

    [Fact]
    public void Position_labels_locate_the_half_size_item_on_a_3x3_grid()
    {
        var white = Enumerable.Repeat((byte)255, 28 * 28).ToArray();
        var splits = MiniVtab.MakeSplits("position", Uniform(white), seed: 4);
        foreach (var image in splits.Val200)
        {
            var lit = Enumerable.Range(0, 28 * 28).Where(i => image.Pixels[i] > 0).ToArray();
            Assert.Equal(14 * 14, lit.Length);
            Assert.Equal((image.Label / 3 * 7, image.Label % 3 * 7), (lit.Min() / 28, lit.Min(i => i % 28)));
        }
        Assert.Equal(9, splits.Val200.Select(g => g.Label).Distinct().Count());
    }

    [Fact]
    public void Count_labels_are_the_number_of_items_less_one()
    {
        var white = Enumerable.Repeat((byte)255, 28 * 28).ToArray();
        var splits = MiniVtab.MakeSplits("count", Uniform(white), seed: 5);
        foreach (var image in splits.Train800)
        {
            var quadrants = Enumerable.Range(0, 4).Count(q => image.Pixels[(q / 2 * 14 + 7) * 28 + q % 2 * 14 + 7] == 255);
            Assert.Equal(image.Label + 1, quadrants);
            Assert.Equal(quadrants * 14 * 14, image.Pixels.Count(p => p > 0));
        }
    }

    [Fact]
    public void Half_averages_2x2_blocks_with_rounding()
    {
        var image = new byte[28 * 28];
        (image[0], image[1], image[28], image[29]) = (1, 2, 3, 4); // mean 2.5 → 3 (rounded half up)
        Assert.Equal(3, MiniVtab.Half(image)[0]);
        Assert.Equal(0, MiniVtab.Half(image)[1]);
    }

    [Fact]
    public void Natural_tasks_draw_disjoint_balanced_splits_and_relabel_the_unseen_classes()
    {
        // Every image unique (its index in bytes 1..3); byte 0 holds the source class.
        static GreyImage[] Make(int perClass, int offset) => [.. Enumerable.Range(0, 10 * perClass).Select(i =>
        {
            var pixels = new byte[28 * 28];
            var id = i + offset;
            (pixels[0], pixels[1], pixels[2], pixels[3]) = ((byte)(i % 10), (byte)id, (byte)(id >> 8), (byte)(id >> 16));
            return new GreyImage(pixels, i % 10);
        })];
        var sources = new MiniVtab.Sources(Make(250, 0), Make(450, 100_000), Make(130, 200_000));
        var fashion = MiniVtab.MakeSplits("fmnist_unseen", sources, seed: 1);
        Assert.Equal((800, 200, 2000), (fashion.Train800.Count, fashion.Val200.Count, fashion.Test.Count));
        Assert.All(fashion.Train800.Concat(fashion.Val200).Concat(fashion.Test), g => Assert.Equal(g.Pixels[0] - 5, g.Label));
        Assert.All(fashion.Train800.GroupBy(g => g.Label), g => Assert.Equal(160, g.Count()));
        static string Id(GreyImage g) => Convert.ToBase64String(g.Pixels, 1, 3);
        Assert.Empty(fashion.Train800.Select(Id).Intersect(fashion.Val200.Select(Id)));
        Assert.Equal(1000, fashion.Train800.Concat(fashion.Val200).Select(Id).Distinct().Count());

        var digits = MiniVtab.MakeSplits("digits", sources, seed: 1);
        Assert.Equal((800, 200, 300), (digits.Train800.Count, digits.Val200.Count, digits.Test.Count));
        Assert.Empty(digits.Test.Select(Id).Intersect(digits.Train800.Concat(digits.Val200).Select(Id)));
        Assert.All(digits.Val200.GroupBy(g => g.Label), g => Assert.Equal(20, g.Count()));

        // The same seed gives the same task, byte for byte.
        var again = MiniVtab.MakeSplits("fmnist_unseen", sources, seed: 1);
        Assert.Equal(fashion.Test.Select(Id), again.Test.Select(Id));
        Assert.NotEqual(fashion.Test.Select(Id), MiniVtab.MakeSplits("fmnist_unseen", sources, seed: 2).Test.Select(Id));
    }

    [Fact]
    public void Written_tasks_read_back_through_the_vtab_loader_with_their_pixels()
    {
        var item = LShape();
        var splits = MiniVtab.MakeSplits("rotation", Uniform(item), seed: 7);
        var folder = Path.Combine(_dir.FullName, "rotation");
        MiniVtab.Write(folder, splits);
        var train = VtabDataset.LoadFolder(folder, VtabSplit.Train800Val200, SkiaImageDecoder.AllFormats, channels: 1);
        Assert.Equal(1000, train.Count);
        Assert.Equal(4, train.ClassCount);
        for (var i = 0; i < 1000; i += 97)
        {
            var expected = i < 800 ? splits.Train800[i] : splits.Val200[i - 800];
            Assert.Equal(expected.Label, train.Label(i));
            using var image = train.LoadImage(i);
            Assert.Equal(expected.Pixels, image.contiguous().data<byte>());
        }
        Assert.Equal(MiniVtab.TestPerStructuredTask, VtabDataset.LoadFolder(folder, VtabSplit.Test, SkiaImageDecoder.AllFormats, 1).Count);
    }

    [Fact]
    public void Digits_are_read_from_the_csv_and_rendered_to_28px()
    {
        var path = Path.Combine(_dir.FullName, "digits.csv.gz");
        using (var gz = new StreamWriter(new GZipStream(File.Create(path), CompressionLevel.Fastest)))
        {
            gz.WriteLine(string.Join(",", Enumerable.Repeat("16", 64)) + ",7");
            gz.WriteLine(string.Join(",", Enumerable.Repeat("0", 63)) + ",8,3");
        }
        var digits = MiniVtab.ReadDigits(path);
        Assert.Equal([7, 3], digits.Select(d => d.Label));
        // Level 16 everywhere: a 24 × 24 white square in a 2-pixel black frame.
        Assert.Equal(24 * 24, digits[0].Pixels.Count(p => p == 255));
        Assert.Equal(0, digits[0].Pixels[0]);
        Assert.Equal(255, digits[0].Pixels[2 * 28 + 2]);
        // A lone level-8 corner pixel is bilinearly spread, never brighter than 8/16 of white.
        Assert.Equal(128, digits[1].Pixels.Max());

        File.WriteAllText(path + ".bad", "");
        using (var gz = new StreamWriter(new GZipStream(File.Create(path + ".bad"), CompressionLevel.Fastest)))
            gz.WriteLine("1,2,3");
        var e = Assert.Throws<InvalidDataException>(() => MiniVtab.ReadDigits(path + ".bad"));
        Assert.Contains(":1: expected 65", e.Message);
        Assert.Contains("python3-sklearn", Assert.Throws<FileNotFoundException>(() => MiniVtab.ReadDigits(path + ".missing")).Message);
    }
}

public sealed class BenchReportTests
{
    [Theory]
    // V-PETL Bench's README: VPT-Deep 69.43 % at 0.56 M → 0.68; VPT-Shallow 64.85 % at 0.08 M → 0.65; LST 71.70 % at 2.38 M → 0.65.
    [InlineData(0.6943, 560_000, 0.678)]
    [InlineData(0.6485, 80_000, 0.646)]
    [InlineData(0.7170, 2_380_000, 0.654)]
    public void Ppt_reproduces_v_petl_bench(double accuracy, double parameters, double ppt) =>
        Assert.Equal(ppt, VtabReport.Ppt(accuracy, parameters), 3);

    private static VtabRun Run(string task, string method, string phase, int seed, double test, long parameters = 1000, double scale = 1) =>
        new(task, method, phase, scale, 0.1 * scale, seed, phase == "sweep" ? test : null, test, parameters, 4096, 10, 100, 0.01, 1 << 20, false, "");

    [Fact]
    public void Rows_average_seeds_then_groups_and_tasks()
    {
        var runs = new List<VtabRun>
        {
            Run("fmnist_unseen", "vpt-deep", "final", 1, 0.80), Run("fmnist_unseen", "vpt-deep", "final", 2, 0.84),
            Run("digits", "vpt-deep", "final", 1, 0.90),
            Run("rotation", "vpt-deep", "final", 1, 0.60),
            Run("rotation", "vpt-deep", "sweep", 1, 0.10), // sweep runs never enter the test table
            Run("fmnist_unseen", "linear", "final", 1, 0.70, parameters: 100), Run("digits", "linear", "final", 1, 0.80, parameters: 100),
            Run("rotation", "linear", "final", 1, 0.40, parameters: 100),
        };
        var rows = VtabReport.Rows(runs, ["fmnist_unseen", "digits", "rotation"], ["vpt-deep", "linear"]);
        var deep = rows[0];
        Assert.Equal(82, deep.Tasks["fmnist_unseen"].Mean, 9);
        Assert.Equal(Math.Sqrt(8), deep.Tasks["fmnist_unseen"].Std, 9); // sample std of 80 and 84
        Assert.Equal(86, deep.Groups["Natural"], 9);
        Assert.Equal(60, deep.Groups["Structured"], 9);
        Assert.Equal(73, deep.MeanOfGroups, 9);
        Assert.Equal((82 + 90 + 60) / 3.0, deep.TaskMean, 9);
        Assert.Equal([1], deep.SeedTaskMeans.Keys); // only seed 1 ran every task
        var claims = VtabReport.Claims(rows);
        // One common seed: no spread to test a difference against.
        Assert.Equal(VtabReport.Verdict.WithinNoise, claims.Single(c => c.Statement.StartsWith("VPT-deep above linear")).Verdict);
        Assert.Equal(VtabReport.Verdict.NotRun, claims.Single(c => c.Statement.StartsWith("GatedPT")).Verdict);
    }

    [Theory]
    [InlineData(new[] { 70.0, 72, 71 }, new[] { 60.0, 61, 62 }, VtabReport.Verdict.Holds)]        // d = 10, 11, 9: t = 17.3
    [InlineData(new[] { 65.0, 58, 66 }, new[] { 60.0, 61, 62 }, VtabReport.Verdict.WithinNoise)]  // d = 5, -3, 4: t = 0.79
    [InlineData(new[] { 50.0, 50, 53 }, new[] { 60.0, 61, 62 }, VtabReport.Verdict.DoesNotHold)]  // d = -10, -11, -9
    public void A_claim_holds_only_when_the_paired_difference_over_seeds_is_significant(double[] a, double[] b, VtabReport.Verdict verdict)
    {
        var runs = Enumerable.Range(0, 3).SelectMany(s => new[]
        {
            Run("digits", "vpt-deep", "final", s + 1, a[s] / 100), Run("digits", "linear", "final", s + 1, b[s] / 100),
        }).ToList();
        var rows = VtabReport.Rows(runs, ["digits"], ["vpt-deep", "linear"]);
        var (found, test) = VtabReport.Paired(rows[0], rows[1]);
        Assert.Equal(verdict, found);
        Assert.Contains("paired t-test over 3 seeds", test);
        Assert.Equal(VtabReport.Std([.. a]), rows[0].TaskMeanStd, 9);
    }

    [Theory]
    [InlineData(new[] { 65.0, 58, 66 }, VtabReport.Verdict.Holds, "not significantly below")]    // d = 5, -3, 4 against 60, 61, 62
    [InlineData(new[] { 50.0, 50, 53 }, VtabReport.Verdict.DoesNotHold, "t = -")]             // d = -10, -11, -9
    public void An_at_least_claim_fails_only_on_a_significant_deficit_and_says_when_it_holds_within_noise(double[] davpt,
        VtabReport.Verdict verdict, string evidence)
    {
        double[] deep = [60, 61, 62];
        var runs = Enumerable.Range(0, 3).SelectMany(s => new[]
        {
            Run("digits", "davpt", "final", s + 1, davpt[s] / 100), Run("digits", "vpt-deep", "final", s + 1, deep[s] / 100),
        }).ToList();
        var claim = VtabReport.Claims(VtabReport.Rows(runs, ["digits"], ["davpt", "vpt-deep"])).Single(c => c.Statement == "DA-VPT at least VPT-deep");
        Assert.Equal(verdict, claim.Verdict);
        Assert.Contains(evidence, claim.Evidence);
    }

    [Fact]
    public void Quick_mode_reads_back_the_rates_the_full_sweep_chose()
    {
        var runs = new List<VtabRun>
        {
            Run("digits", "vapt", "final", 1, 0.9, scale: 0.3), Run("digits", "vapt", "final", 2, 0.8, scale: 0.3),
            Run("count", "vapt", "final", 1, 0.5, scale: 3), Run("count", "linear", "final", 1, 0.4, scale: 10),
        };
        var report = VtabReport.Build(runs, ["digits", "count"], ["vapt", "linear"], new VtabBenchOptions(), gain: null,
            new VtabReport.Context(TimeSpan.FromMinutes(1), "id", "ckpt", 2));
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllText(path, report.Json);
            var rates = VtabBenchVerb.QuickRates(path);
            Assert.Equal(3, rates.Count);
            Assert.Equal(0.3, rates[("digits", "vapt")]);
            Assert.Equal(3, rates[("count", "vapt")]);
            Assert.Equal(10, rates[("count", "linear")]);
        }
        finally
        {
            File.Delete(path);
        }
        Assert.Empty(VtabBenchVerb.QuickRates(path + ".absent"));
    }

    [Fact]
    public void Vit_b16_forward_costs_timms_17_6_gmacs()
    {
        var spec = VitSpec.Preset("vit-b16");
        // timm lists 17.58 GMACs for vit_base_patch16_224 (including the head and the small non-matmul terms).
        Assert.Equal(17.58e9, StepCost.ForwardFlops(spec, "linear", 1) / 2, 0.05e9);
        // Prompts lengthen every block's sequence; training costs twice (frozen) or three times (full) the forward.
        Assert.True(StepCost.ForwardFlops(spec, "vpt-deep", 1) > StepCost.ForwardFlops(spec, "linear", 1) * 1.05);
        Assert.Equal(3 * StepCost.ForwardFlops(spec, "full", 32), StepCost.TrainFlops(spec, "full", 32));
        Assert.Equal(2 * StepCost.ForwardFlops(spec, "vapt", 32), StepCost.TrainFlops(spec, "vapt", 32));
    }

    [Fact]
    public void Median_and_sample_std()
    {
        Assert.Equal(2, SpeedStepVerb.Median([3, 1, 2]));
        Assert.Equal(2.5, SpeedStepVerb.Median([4, 1, 2, 3]));
        Assert.Equal(0, VtabReport.Std([5]));
        Assert.Equal(1, VtabReport.Std([1, 2, 3]), 12);
    }

    [Fact]
    public void A_key_given_twice_on_the_command_line_takes_its_last_value()
    {
        var values = PeftHost.ParseOverrides(["Run:Seed=1", "Data:Root=a", "Run:Seed=7"]).ToDictionary();
        Assert.Equal("7", values["Run:Seed"]);
        Assert.Equal(2, values.Count);
    }
}
