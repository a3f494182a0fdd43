using TorchSharp;
using static TorchSharp.torch;

namespace Peft.Data.Tests;

public class LoaderTests
{
    // Random crop + flip, so augmentation differs per sample and per epoch.
    private static readonly TransformPipeline Augment = new(new RandomCrop(6), new RandomHorizontalFlip(), Normalize.ImageNet);

    private static DataLoader Loader(IImageDataset ds, DataLoaderOptions options) => new(ds, Augment, options);

    /// <summary>(indices, labels, image values) of every batch of an epoch.</summary>
    private static List<(int[] Indices, long[] Labels, float[] Images)> Collect(DataLoader loader, int epoch)
    {
        var result = new List<(int[], long[], float[])>();
        foreach (var b in loader.Epoch(epoch))
            using (b)
                result.Add((b.Indices, b.Labels.data<long>().ToArray(), b.Images.data<float>().ToArray()));
        return result;
    }

    private static void AssertSameEpoch(List<(int[] Indices, long[] Labels, float[] Images)> a, List<(int[] Indices, long[] Labels, float[] Images)> b)
    {
        Assert.Equal(a.Count, b.Count);
        for (var k = 0; k < a.Count; k++)
        {
            Assert.Equal(a[k].Indices, b[k].Indices);
            Assert.Equal(a[k].Labels, b[k].Labels);
            Assert.Equal(a[k].Images, b[k].Images); // bit-identical
        }
    }

    [Fact]
    public void Batches_have_the_documented_shapes_dtypes_and_cover_the_epoch()
    {
        var ds = new PatternDataset(10, 3);
        var loader = Loader(ds, new DataLoaderOptions { BatchSize = 4, Seed = 1, Workers = 2 });
        var batches = loader.Epoch(0).ToList();
        Assert.Equal([4, 4, 2], batches.Select(b => b.Count));
        Assert.Equal([4L, 3, 6, 6], batches[0].Images.shape);
        Assert.Equal(ScalarType.Float32, batches[0].Images.dtype);
        Assert.Equal(ScalarType.Int64, batches[0].Labels.dtype);
        Assert.Equal(Enumerable.Range(0, 10), batches.SelectMany(b => b.Indices).Order());
        Assert.All(batches, b => Assert.Equal(b.Indices.Select(i => (long)(i % 3)), b.Labels.data<long>().ToArray()));
        Assert.Equal(Enumerable.Range(0, 3), batches.Select(b => b.Number));
        foreach (var b in batches) b.Dispose();

        var dropped = Loader(ds, new DataLoaderOptions { BatchSize = 4, DropLast = true, Shuffle = false, Workers = 0 }).Epoch(0).ToList();
        Assert.Equal([[0, 1, 2, 3], [4, 5, 6, 7]], dropped.Select(b => b.Indices));
        foreach (var b in dropped) b.Dispose();
    }

    [Fact]
    public void Same_seed_gives_the_same_order_and_augmentation_and_another_epoch_differs()
    {
        var ds = new PatternDataset(40, 4);
        var options = new DataLoaderOptions { BatchSize = 8, Seed = 7, Workers = 2 };
        var first = Collect(Loader(ds, options), epoch: 0);
        var again = Collect(Loader(ds, options), epoch: 0);
        AssertSameEpoch(first, again);

        var nextEpoch = Collect(Loader(ds, options), epoch: 1);
        Assert.NotEqual(first.SelectMany(b => b.Indices), nextEpoch.SelectMany(b => b.Indices));
        var otherSeed = Collect(Loader(ds, options with { Seed = 8 }), epoch: 0);
        Assert.NotEqual(first.SelectMany(b => b.Indices), otherSeed.SelectMany(b => b.Indices));

        // The augmentation of a sample depends on (seed, epoch, index) only, not on its batch or position.
        var sequential = Collect(Loader(ds, options with { Shuffle = false, BatchSize = 40 }), epoch: 0).Single();
        var perSample = 3 * 6 * 6;
        var b0 = first[0];
        for (var r = 0; r < b0.Indices.Length; r++)
            Assert.Equal(sequential.Images.AsSpan(b0.Indices[r] * perSample, perSample).ToArray(), b0.Images.AsSpan(r * perSample, perSample).ToArray());
    }

    [Fact]
    public void Parallel_loader_yields_exactly_what_the_serial_loader_does()
    {
        var ds = new PatternDataset(37, 5, delayMs: 1);
        var serial = Collect(Loader(ds, new DataLoaderOptions { BatchSize = 5, Seed = 3, Workers = 0 }), epoch: 2);
        var parallel = Collect(Loader(ds, new DataLoaderOptions { BatchSize = 5, Seed = 3, Workers = 4, PrefetchBatches = 3 }), epoch: 2);
        Assert.Equal(8, serial.Count);
        AssertSameEpoch(serial, parallel);
    }

    [Fact]
    public void Prefetch_is_bounded_while_the_consumer_holds_a_batch()
    {
        var ds = new PatternDataset(200, 2);
        const int batchSize = 4, prefetch = 2;
        var loader = Loader(ds, new DataLoaderOptions { BatchSize = batchSize, Workers = 3, PrefetchBatches = prefetch });
        using var e = loader.Epoch(0).GetEnumerator();
        Assert.True(e.MoveNext());
        using (e.Current)
        {
            // The held batch plus `prefetch` batches ahead are built; then the workers wait.
            var expected = (prefetch + 1) * batchSize;
            var deadline = DateTime.UtcNow.AddSeconds(10);
            while (ds.Loads < expected && DateTime.UtcNow < deadline) Thread.Sleep(10);
            Thread.Sleep(300);
            Assert.Equal(expected, ds.Loads);
        }
        Assert.True(e.MoveNext());
        e.Current.Dispose();
        var deadline2 = DateTime.UtcNow.AddSeconds(10);
        while (ds.Loads < (prefetch + 2) * batchSize && DateTime.UtcNow < deadline2) Thread.Sleep(10);
        Thread.Sleep(200);
        Assert.Equal((prefetch + 2) * batchSize, ds.Loads);
    }

    [Fact]
    public void Stopping_early_releases_prefetched_batches_and_wait_time_is_reported()
    {
        var ds = new PatternDataset(64, 2, delayMs: 5);
        var loader = Loader(ds, new DataLoaderOptions { BatchSize = 4, Workers = 2, PrefetchBatches = 4 });
        foreach (var b in loader.Epoch(0))
        {
            b.Dispose();
            if (b.Number == 1) break;
        }
        Assert.Equal(2, loader.Stats.Batches);
        Assert.Equal(8, loader.Stats.Samples);
        Assert.True(loader.Stats.WaitTime > TimeSpan.Zero); // 5 ms per image: the consumer had to wait for the first batch
        Assert.Equal(16, loader.Epoch(1).Sum(b => { using (b) return b.Count; }) / 4); // the loader is reusable after a break
    }

    [Fact]
    public void Cancellation_stops_the_epoch_at_a_batch_boundary()
    {
        var ds = new PatternDataset(64, 2);
        using var cts = new CancellationTokenSource();
        var loader = Loader(ds, new DataLoaderOptions { BatchSize = 4, Workers = 2 });
        var seen = 0;
        Assert.ThrowsAny<OperationCanceledException>(() =>
        {
            foreach (var b in loader.Epoch(0, cts.Token))
            {
                b.Dispose();
                if (++seen == 3) cts.Cancel();
            }
        });
        Assert.Equal(3, seen);
    }

    [Fact]
    public async Task Cancelling_at_any_moment_ends_the_epoch()
    {
        // Cancelled from a timer thread while workers are mid-batch: the consumer must not wait on a job no worker will run.
        var run = Task.Run(() =>
        {
            for (var k = 0; k < 20; k++)
            {
                using var late = new CancellationTokenSource(TimeSpan.FromMilliseconds(k % 7));
                try
                {
                    foreach (var b in Loader(new PatternDataset(64, 2, delayMs: 1), new DataLoaderOptions { BatchSize = 4, Workers = 2 }).Epoch(0, late.Token))
                        b.Dispose();
                }
                catch (OperationCanceledException)
                {
                }
            }
        });
        await run.WaitAsync(TimeSpan.FromSeconds(60)); // TimeoutException if an epoch hangs
    }

    [Fact]
    public void Class_balanced_batches_hold_k_samples_of_each_of_B_over_k_distinct_classes()
    {
        var ds = new PatternDataset(120, 10); // 12 samples per class
        var options = new DataLoaderOptions { BatchSize = 12, SamplesPerClass = 3, Seed = 5, Workers = 2 };
        var loader = Loader(ds, options);
        Assert.IsType<ClassBalancedBatchSampler>(loader.Sampler);
        var batches = Collect(loader, 0);
        Assert.Equal(10, batches.Count); // ⌊120 / 12⌋
        foreach (var (indices, labels, _) in batches)
        {
            Assert.Equal(12, indices.Length);
            var groups = labels.GroupBy(l => l).ToArray();
            Assert.Equal(4, groups.Length);
            Assert.All(groups, g => Assert.Equal(3, g.Count()));
            Assert.Equal(12, indices.Distinct().Count());
        }
        AssertSameEpoch(batches, Collect(Loader(ds, options), 0));
        Assert.NotEqual(batches.SelectMany(b => b.Indices), Collect(loader, 1).SelectMany(b => b.Indices));

        // A class with fewer than k samples repeats them; a larger one gives k distinct samples in every batch.
        int[] small = [0, 0, 1, 1, 1, 1, 1, 2];
        var sampler = new ClassBalancedBatchSampler(small, classesPerBatch: 2, samplesPerClass: 3, seed: 0, batchesPerEpoch: 40);
        foreach (var batch in sampler.Batches(0).Concat(sampler.Batches(1)))
        {
            var chunks = batch.Chunk(3).ToArray();
            Assert.Equal(2, chunks.Length);
            Assert.All(chunks, c => Assert.Single(c.Select(i => small[i]).Distinct()));
            Assert.NotEqual(small[chunks[0][0]], small[chunks[1][0]]);
            Assert.All(chunks.Where(c => small[c[0]] == 2), c => Assert.Equal([7, 7, 7], c));
            Assert.All(chunks.Where(c => small[c[0]] == 1), c => Assert.Equal(3, c.Distinct().Count()));
        }
        Assert.Throws<ArgumentException>(() => new ClassBalancedBatchSampler([0, 1], 3, 1, 0));
        Assert.Throws<ArgumentException>(() => Loader(ds, options with { BatchSize = 10 }));
    }

    [Fact]
    public void A_corrupt_or_missing_image_fails_with_the_file_name_or_is_skipped_and_counted()
    {
        using var dir = new TempDir();
        var files = new List<ImageFile>();
        for (var i = 0; i < 6; i++)
        {
            var path = dir.File($"img{i}.ppm");
            File.WriteAllBytes(path, TestData.SolidPpm(8, 8, (byte)i, 0, 0));
            files.Add(new ImageFile(path, i % 2));
        }
        var corrupt = files[2].Path;
        File.WriteAllBytes(corrupt, TestData.SolidPpm(8, 8, 1, 1, 1)[..20]);
        var missing = dir.File("gone.ppm");
        files.Add(new ImageFile(missing, 0));
        var ds = new FileImageDataset("t", files, ["a", "b"], new NetpbmDecoder());

        var strict = Loader(ds, new DataLoaderOptions { BatchSize = 2, Shuffle = false, Workers = 2 });
        var e = Assert.Throws<BadImageException>(() => strict.Epoch(0).ToList().ForEach(b => b.Dispose()));
        Assert.Equal(corrupt, e.SourceName);
        Assert.StartsWith($"{corrupt}: raster truncated", e.Message);
        var serial = Loader(ds, new DataLoaderOptions { BatchSize = 2, Shuffle = false, Workers = 0 });
        Assert.Equal(corrupt, Assert.Throws<BadImageException>(() => serial.Epoch(0).ToList().ForEach(b => b.Dispose())).SourceName);
        var gone = Assert.Throws<BadImageException>(() => ds.LoadImage(6));
        Assert.Equal($"{missing}: image file not found", gone.Message);

        var lenient = Loader(ds, new DataLoaderOptions { BatchSize = 2, Shuffle = false, Workers = 2, SkipBadImages = true });
        var batches = Collect(lenient, 0);
        Assert.Equal([[0, 1], [3], [4, 5]], batches.Select(b => b.Indices)); // the last batch (only the missing file) is empty and dropped
        Assert.Equal(2, lenient.SkippedImages);
        Assert.Equal(new[] { corrupt, missing }.Order(StringComparer.Ordinal), lenient.SkippedSources);
        Assert.Equal(5, lenient.Stats.Samples);
    }

    [Fact]
    public void Samples_of_different_sizes_in_one_batch_are_an_error_naming_the_sample()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("a", "1.ppm"), TestData.SolidPpm(8, 8, 1, 1, 1));
        File.WriteAllBytes(dir.File("a", "2.ppm"), TestData.SolidPpm(9, 8, 1, 1, 1));
        var ds = ImageFolderDataset.Load(dir.Path, new NetpbmDecoder());
        var loader = new DataLoader(ds, new TransformPipeline(Normalize.ImageNet), new DataLoaderOptions { BatchSize = 2, Shuffle = false });
        var e = Assert.Throws<InvalidOperationException>(() => loader.Epoch(0).ToList());
        Assert.StartsWith(ds.PathOf(1) + ": transformed to [3, 8, 9]", e.Message);
    }

    [Fact]
    public void Batch_tensors_belong_to_no_scope_so_the_consumers_step_scope_does_not_free_them()
    {
        var loader = Loader(new PatternDataset(8, 2), new DataLoaderOptions { BatchSize = 4, Workers = 0 });
        Batch batch;
        using (var step = torch.NewDisposeScope())
        {
            batch = loader.Epoch(0).First();
            Assert.Equal(0, step.DisposablesCount);
        }
        Assert.False(batch.Images.IsInvalid);
        batch.Dispose();
        Assert.True(batch.Images.IsInvalid && batch.Labels.IsInvalid); // IsInvalid: the handle is released
    }
}
