namespace Peft.Data.Tests;

public class IdxTests
{
    [Fact]
    public void Gzipped_IDX_files_written_byte_by_byte_read_back_exactly()
    {
        using var dir = new TempDir();
        var pixels = Enumerable.Range(0, 3 * 2 * 4).Select(v => (byte)(v * 10)).ToArray();
        TestData.WriteIdx(dir.File("img.gz"), 0x00000803, [3, 2, 4], pixels);
        TestData.WriteIdx(dir.File("lab"), 0x00000801, [3], [2, 0, 1], gzip: false);

        var ds = IdxDataset.Load(dir.File("img.gz"), dir.File("lab"));
        Assert.Equal(3, ds.Count);
        Assert.Equal(3, ds.ClassCount);
        Assert.Equal(["0", "1", "2"], ds.ClassNames);
        Assert.Equal([2, 0, 1], ds.Labels());
        Assert.Equal((2, 4), (ds.Height, ds.Width));
        using var image = ds.LoadImage(1);
        Assert.Equal([2L, 4, 1], image.shape);
        Assert.Equal(pixels[8..16], image.data<byte>().ToArray());
        Assert.EndsWith("img.gz#1", ds.SourceName(1));
    }

    [Fact]
    public void Wrong_magic_truncation_and_count_mismatch_are_errors_naming_the_file()
    {
        using var dir = new TempDir();
        TestData.WriteIdx(dir.File("labels.gz"), 0x00000801, [4], [0, 1, 2, 3]);
        var e = Assert.Throws<DatasetFormatException>(() => IdxArray.Read(dir.File("labels.gz"), 3));
        Assert.Equal(dir.File("labels.gz"), e.File);
        Assert.Contains("0x00000801, expected 0x00000803", e.Message);

        TestData.WriteIdx(dir.File("short.gz"), 0x00000803, [2, 2, 2], [1, 2, 3]);
        e = Assert.Throws<DatasetFormatException>(() => IdxArray.Read(dir.File("short.gz"), 3));
        Assert.StartsWith(dir.File("short.gz") + ": file ends inside the data (2x2x2 = 8 bytes)", e.Message);

        TestData.WriteIdx(dir.File("images.gz"), 0x00000803, [3, 1, 1], [1, 2, 3]);
        e = Assert.Throws<DatasetFormatException>(() => IdxDataset.Load(dir.File("images.gz"), dir.File("labels.gz")));
        Assert.Contains("4 labels for 3 images", e.Message);
        Assert.Equal(dir.File("labels.gz"), e.File);

        var missing = Assert.Throws<FileNotFoundException>(() => IdxArray.Read(dir.File("nope.gz"), 1));
        Assert.Contains("nope.gz", missing.Message);
    }

    [Fact]
    public void Fashion_MNIST_from_the_Debian_package_has_the_published_counts()
    {
        // scripts/ set-up installs dataset-fashion-mnist; its absence is a set-up failure, not a skip.
        Assert.True(File.Exists(Path.Combine(FashionMnist.DefaultDirectory, "train-images-idx3-ubyte.gz")),
            $"Fashion-MNIST missing under {FashionMnist.DefaultDirectory}: apt-get install dataset-fashion-mnist");
        var train = FashionMnist.Train();
        var test = FashionMnist.Test();
        Assert.Equal(60_000, train.Count);
        Assert.Equal(10_000, test.Count);
        Assert.Equal((28, 28), (train.Height, train.Width));
        Assert.Equal(9, train.Label(0));
        Assert.Equal("Ankle boot", train.ClassNames[train.Label(0)]);
        Assert.All(train.ClassCounts(), n => Assert.Equal(6_000, n));
        Assert.All(test.ClassCounts(), n => Assert.Equal(1_000, n));
        using var image = train.LoadImage(0);
        Assert.Equal([28L, 28, 1], image.shape);
        Assert.Equal(train.Pixels(0).ToArray(), image.data<byte>().ToArray());
    }

    [Fact]
    public void Class_subset_remaps_labels_and_stratified_sample_is_balanced_and_seeded()
    {
        var train = FashionMnist.Train();
        var upper = train.WithClasses(5, 6, 7, 8, 9);
        Assert.Equal(30_000, upper.Count);
        Assert.Equal(["Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"], upper.ClassNames);
        Assert.Equal(4, upper.Label(0)); // the first training image, an ankle boot (9 → 4)
        Assert.All(Enumerable.Range(0, upper.Count), i => Assert.Equal(train.Label(upper.SourceIndex(i)) - 5, upper.Label(i)));

        var sample = train.StratifiedSample(1_000, seed: 42);
        Assert.Equal(1_000, sample.Count);
        Assert.All(sample.ClassCounts(), n => Assert.Equal(100, n));
        var again = train.StratifiedSample(1_000, seed: 42);
        var other = train.StratifiedSample(1_000, seed: 43);
        var indices = Enumerable.Range(0, 1_000).Select(sample.SourceIndex).ToArray();
        Assert.Equal(indices, Enumerable.Range(0, 1_000).Select(again.SourceIndex));
        Assert.NotEqual(indices, Enumerable.Range(0, 1_000).Select(other.SourceIndex));
        Assert.Equal(indices.Order(), indices); // dataset order kept
        Assert.Equal(1_000, indices.Distinct().Count());

        // 1,003 over 10 classes: 100 each plus one more for three seeded classes; on a class subset too.
        Assert.Equal(3, train.StratifiedSample(1_003, seed: 1).ClassCounts().Count(n => n == 101));
        Assert.All(upper.StratifiedSample(50, seed: 7).ClassCounts(), n => Assert.Equal(10, n));
    }

    [Fact]
    public void Stratified_sample_gives_a_small_class_all_it_has_and_the_rest_to_others()
    {
        using var dir = new TempDir();
        byte[] labels = [0, 0, 0, 0, 0, 0, 1, 2, 2, 2, 2, 2];
        TestData.WriteIdx(dir.File("i.gz"), 0x803, [labels.Length, 1, 1], new byte[labels.Length]);
        TestData.WriteIdx(dir.File("l.gz"), 0x801, [labels.Length], labels);
        var counts = IdxDataset.Load(dir.File("i.gz"), dir.File("l.gz")).StratifiedSample(9, seed: 3).ClassCounts();
        Assert.Equal(1, counts[1]);
        Assert.Equal(8, counts[0] + counts[2]);
        Assert.InRange(counts[0], 4, 5);
    }
}
