using System.Collections.Concurrent;
using System.Diagnostics;
using System.Threading.Channels;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

public sealed record DataLoaderOptions
{
    public int BatchSize { get; init; } = 64;

    /// <summary>Shuffle the order each epoch, deterministically per (Seed, epoch).</summary>
    public bool Shuffle { get; init; } = true;

    /// <summary>Drop the last batch when it is smaller than <see cref="BatchSize"/>.</summary>
    public bool DropLast { get; init; }

    /// <summary>Seeds the order and every sample's augmentation.</summary>
    public long Seed { get; init; }

    /// <summary>Threads decoding and transforming ahead of the consumer; 0 builds each batch on the consumer's thread.</summary>
    public int Workers { get; init; } = Environment.ProcessorCount;

    /// <summary>Batches built (or being built) ahead of the one the consumer holds; bounds memory.</summary>
    public int PrefetchBatches { get; init; } = 4;

    /// <summary>Skip and count samples whose image is missing or corrupt, instead of failing with the file's name.</summary>
    public bool SkipBadImages { get; init; }

    /// <summary>
    /// When above 0, class-balanced batches: BatchSize / SamplesPerClass classes × SamplesPerClass samples each
    /// (<see cref="ClassBalancedBatchSampler"/>); Shuffle and DropLast then do not apply.
    /// </summary>
    public int SamplesPerClass { get; init; }

    /// <summary>Put each batch in page-locked memory, so that the copy to a CUDA device does not block the host (CUDA runs only).</summary>
    public bool PinMemory { get; init; }
}

/// <summary>
/// A batch: images float32 [B, C, H, W] and labels int64 [B]. Its tensors belong to no dispose scope (they were
/// built on a worker thread); the consumer owns them and releases them by disposing the batch.
/// </summary>
public sealed class Batch(Tensor images, Tensor labels, int[] indices, int epoch, int number) : IDisposable
{
    public Tensor Images { get; } = images;
    public Tensor Labels { get; } = labels;

    /// <summary>The dataset index of each row (skipped bad images are absent).</summary>
    public int[] Indices { get; } = indices;

    public int Epoch { get; } = epoch;

    /// <summary>Position of this batch in its epoch.</summary>
    public int Number { get; } = number;

    public int Count => Indices.Length;

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>Cumulative loader counters.</summary>
/// <param name="WaitTime">Time the consumer spent blocked waiting for a batch (with no workers: building it).</param>
public readonly record struct DataLoaderStats(TimeSpan WaitTime, int Batches, long Samples, int SkippedImages);

/// <summary>
/// Batches of (images, labels) from a dataset through a transform pipeline. Samples are decoded and transformed on
/// <see cref="DataLoaderOptions.Workers"/> threads, at most <see cref="DataLoaderOptions.PrefetchBatches"/> batches
/// ahead, and delivered in sampler order. Output depends only on (seed, epoch): the order comes from the sampler and
/// each sample's augmentation from its own generator (<see cref="Shuffling.ForSample"/>), so the parallel loader
/// yields exactly what the serial one does.
/// </summary>
public sealed class DataLoader
{
    private readonly TransformPipeline _transform;
    private readonly ConcurrentDictionary<string, string> _skippedSources = new();
    private long _waitTicks, _samples;
    private int _batches, _skipped;

    public DataLoader(IImageDataset dataset, TransformPipeline transform, DataLoaderOptions options, IBatchSampler? sampler = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(options.BatchSize, 1);
        ArgumentOutOfRangeException.ThrowIfNegative(options.Workers);
        ArgumentOutOfRangeException.ThrowIfLessThan(options.PrefetchBatches, 1);
        if (options.SamplesPerClass > 0 && options.BatchSize % options.SamplesPerClass != 0)
            throw new ArgumentException($"BatchSize {options.BatchSize} is not a multiple of SamplesPerClass {options.SamplesPerClass}");
        Dataset = dataset;
        _transform = transform;
        Options = options;
        Sampler = sampler ?? (options.SamplesPerClass > 0
            ? new ClassBalancedBatchSampler(dataset.Labels(), options.BatchSize / options.SamplesPerClass, options.SamplesPerClass, options.Seed)
            : new RandomBatchSampler(dataset.Count, options.BatchSize, options.Shuffle, options.DropLast, options.Seed));
    }

    public IImageDataset Dataset { get; }

    /// <summary>The per-image pipeline.</summary>
    public TransformPipeline Transform => _transform;
    public DataLoaderOptions Options { get; }
    public IBatchSampler Sampler { get; }

    public DataLoaderStats Stats => new(TimeSpan.FromTicks(Interlocked.Read(ref _waitTicks)), Volatile.Read(ref _batches),
        Interlocked.Read(ref _samples), Volatile.Read(ref _skipped));

    /// <summary>Samples skipped so far (with <see cref="DataLoaderOptions.SkipBadImages"/>); a bad image counts once per epoch it is met.</summary>
    public int SkippedImages => Volatile.Read(ref _skipped);

    /// <summary>The distinct sources of the skipped samples.</summary>
    public IReadOnlyCollection<string> SkippedSources => _skippedSources.Keys.Order(StringComparer.Ordinal).ToArray();

    /// <summary>The first skipped source (in name order) and why it was skipped, or null when none was.</summary>
    public string? SkipExample => _skippedSources.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Value).FirstOrDefault();

    /// <summary>
    /// The batches of <paramref name="epoch"/>, in order. Dispose each batch. Stopping early (break, exception,
    /// cancellation) stops the workers and releases the batches they built ahead. A bad image fails the batch that
    /// holds it, with a <see cref="BadImageException"/> naming the file, unless SkipBadImages is set.
    /// </summary>
    public IEnumerable<Batch> Epoch(int epoch, CancellationToken cancellationToken = default)
    {
        var batches = Sampler.Batches(epoch);
        return Options.Workers == 0 ? Serial(epoch, batches, cancellationToken) : Parallel(epoch, batches, cancellationToken);
    }

    private IEnumerable<Batch> Serial(int epoch, IReadOnlyList<int[]> batches, CancellationToken ct)
    {
        for (var b = 0; b < batches.Count; b++)
        {
            ct.ThrowIfCancellationRequested();
            var clock = Stopwatch.StartNew();
            var batch = Build(epoch, b, batches[b]);
            if (batch is null) continue;
            Delivered(batch, clock);
            yield return batch;
        }
    }

    private IEnumerable<Batch> Parallel(int epoch, IReadOnlyList<int[]> batches, CancellationToken ct)
    {
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        // Jobs enter `ordered` (bounded: the prefetch depth) before `work`, so the dispatcher stalls once PrefetchBatches
        // jobs wait for the consumer, and the consumer reads results in batch order whatever order workers finish in.
        var ordered = Channel.CreateBounded<Job>(new BoundedChannelOptions(Options.PrefetchBatches) { SingleReader = true, SingleWriter = true });
        var work = Channel.CreateUnbounded<Job>(new UnboundedChannelOptions { SingleWriter = true });
        var dispatcher = Task.Run(async () =>
        {
            try
            {
                for (var b = 0; b < batches.Count; b++)
                {
                    var job = new Job(b, batches[b]);
                    await ordered.Writer.WriteAsync(job, stop.Token);
                    await work.Writer.WriteAsync(job, stop.Token);
                }
            }
            finally
            {
                ordered.Writer.TryComplete();
                work.Writer.TryComplete();
            }
        }, CancellationToken.None);
        // Each worker is a thread of its own for the epoch, not a thread-pool task that resumes on whichever pool thread
        // is free: glibc gives every thread that allocates its own malloc arena, which keeps the batches it once held.
        var workers = Enumerable.Range(0, Options.Workers).Select(_ => Task.Factory.StartNew(() =>
        {
            foreach (var job in work.Reader.ReadAllAsync(stop.Token).ToBlockingEnumerable(stop.Token))
                job.Run(this, epoch, stop.Token);
        }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default)).ToArray();

        Job? taken = null; // read from `ordered` but not yet handed to the consumer
        try
        {
            while (true)
            {
                ct.ThrowIfCancellationRequested(); // jobs already built must not outrun a cancellation
                var clock = Stopwatch.StartNew();
                if (!TryTake(ordered.Reader, stop.Token, out var job)) yield break;
                taken = job;
                // Rethrows a worker's exception at this batch's turn. The token matters: once cancelled, the workers stop
                // and a job they never started would otherwise be waited on forever.
                var batch = job.Result.WaitAsync(stop.Token).GetAwaiter().GetResult();
                taken = null;
                if (batch is null) continue;
                Delivered(batch, clock);
                yield return batch;
            }
        }
        finally
        {
            stop.Cancel();
            try
            {
                Task.WaitAll([dispatcher, .. workers]);
            }
            catch (AggregateException e) when (e.InnerExceptions.All(x => x is OperationCanceledException))
            {
                // The workers and the dispatcher end by cancellation when the consumer stops early.
            }
            // Release what was built ahead and will never be consumed.
            if (taken is { Result.IsCompletedSuccessfully: true }) taken.Result.Result?.Dispose();
            while (ordered.Reader.TryRead(out var unread))
                if (unread.Result.IsCompletedSuccessfully) unread.Result.Result?.Dispose();
        }
    }

    private static bool TryTake(ChannelReader<Job> reader, CancellationToken ct, out Job job)
    {
        while (!reader.TryRead(out job!))
            if (!reader.WaitToReadAsync(ct).AsTask().GetAwaiter().GetResult())
                return false;
        return true;
    }

    private void Delivered(Batch batch, Stopwatch waited)
    {
        Interlocked.Add(ref _waitTicks, waited.Elapsed.Ticks);
        Interlocked.Increment(ref _batches);
        Interlocked.Add(ref _samples, batch.Count);
    }

    /// <summary>
    /// Builds one batch on the calling thread. Per-sample tensors live in a dispose scope released on return; the
    /// batch tensors are detached from every scope so the consumer, on another thread, owns them. Null when every
    /// sample was skipped.
    /// </summary>
    private Batch? Build(int epoch, int number, int[] indices)
    {
        using var scope = torch.NewDisposeScope();
        Tensor? x = null; // each sample is copied into its row and released: the batch, not the batch twice (samples + stack)
        var labels = new List<long>(indices.Length);
        var kept = new List<int>(indices.Length);
        foreach (var i in indices)
        {
            using var sample = LoadSample(epoch, i);
            if (sample is null) continue;
            if (x is not null && !sample.shape.AsSpan().SequenceEqual(x.shape.AsSpan(1)))
                throw new InvalidOperationException($"{Dataset.SourceName(i)}: transformed to [{string.Join(", ", sample.shape)}] but the batch's first " +
                                                    $"sample is [{string.Join(", ", x.shape[1..])}]; add a Resize or crop so every sample has one size");
            x ??= torch.empty([(long)indices.Length, .. sample.shape], sample.dtype);
            using (var row = x[kept.Count]) row.copy_(sample);
            labels.Add(Dataset.Label(i));
            kept.Add(i);
        }
        if (x is null) return null;
        if (kept.Count < indices.Length) x = x.narrow(0, 0, kept.Count).contiguous();
        var y = torch.tensor(labels.ToArray(), ScalarType.Int64);
        if (Options.PinMemory) (x, y) = (x.pin_memory(), y.pin_memory());
        return new Batch(x.DetachFromDisposeScope(), y.DetachFromDisposeScope(), kept.ToArray(), epoch, number);
    }

    private Tensor? LoadSample(int epoch, int index)
    {
        try
        {
            using var raw = Dataset.LoadImage(index);
            return _transform.Apply(raw, Shuffling.ForSample(Options.Seed, epoch, index));
        }
        catch (BadImageException e) when (Options.SkipBadImages)
        {
            Interlocked.Increment(ref _skipped);
            _skippedSources.TryAdd(e.SourceName, e.Message);
            return null;
        }
        catch (Exception e) when (e is not BadImageException)
        {
            throw new InvalidOperationException($"{Dataset.SourceName(index)}: transform failed: {e.Message}", e);
        }
    }

    /// <summary>One batch to build; the consumer awaits <see cref="Result"/> in batch order.</summary>
    private sealed class Job(int number, int[] indices)
    {
        private readonly TaskCompletionSource<Batch?> _result = new(TaskCreationOptions.RunContinuationsAsynchronously);
        public Task<Batch?> Result => _result.Task;

        public void Run(DataLoader loader, int epoch, CancellationToken ct)
        {
            if (ct.IsCancellationRequested)
            {
                _result.TrySetCanceled(ct);
                return;
            }
            try
            {
                _result.SetResult(loader.Build(epoch, number, indices));
            }
            catch (Exception e)
            {
                _result.SetException(e);
            }
        }
    }
}
