using Peft.Data;
using TorchSharp;
using DataLoader = Peft.Data.DataLoader;
using static TorchSharp.torch;

namespace Peft.Training.Data;

/// <summary>A labelled batch; the consumer owns (and disposes) both tensors.</summary>
public readonly record struct LabeledBatch(Tensor Images, Tensor Labels) : IDisposable
{
    /// <summary>
    /// The batch on <paramref name="device"/>: itself when it is there, else copies in the caller's dispose scope (from
    /// pinned memory without blocking the host when the loader pinned it).
    /// </summary>
    public (Tensor Images, Tensor Labels) On(Device device) =>
        Images.device == device ? (Images, Labels) : (Images.to(device, non_blocking: true), Labels.to(device, non_blocking: true));

    public void Dispose()
    {
        Images.Dispose();
        Labels.Dispose();
    }
}

/// <summary>What the trainer reads: the same batches for the same epoch, in the same order, every time.</summary>
public interface IBatchSource
{
    int SampleCount { get; }

    /// <summary>Batches in one epoch.</summary>
    int BatchCount { get; }

    /// <summary>Batches of one epoch, deterministic per (seed, epoch): a resumed run can skip those already seen.</summary>
    IEnumerable<LabeledBatch> Batches(int epoch, CancellationToken cancellationToken);

    /// <summary>Time the consumer has spent blocked waiting for data.</summary>
    TimeSpan WaitTime { get; }

    /// <summary>Missing or corrupt images skipped so far (Data:SkipBadImages); 0 when bad images are errors.</summary>
    int SkippedImages => 0;

    /// <summary>One skipped image and why (its file and the reason), or null when none was skipped.</summary>
    string? SkipExample => null;

    /// <summary>
    /// The same batches in the same order with each input replaced by <paramref name="featurize"/>(input), computed once
    /// per sample; null when an input can differ between epochs (random augmentation, skipped images). The caller owns
    /// the result.
    /// </summary>
    InMemoryBatchSource? CacheFeatures(Func<Tensor, Tensor> featurize, CancellationToken cancellationToken = default) => null;
}

/// <summary>Peft.Data's prefetching loader as a batch source.</summary>
public sealed class LoaderBatchSource(DataLoader loader) : IBatchSource
{
    public int SampleCount => loader.Dataset.Count;
    public int BatchCount { get; } = loader.Sampler.Batches(0).Count;
    public TimeSpan WaitTime => loader.Stats.WaitTime;
    public int SkippedImages => loader.SkippedSources.Count; // distinct files: each epoch meets the same ones again
    public string? SkipExample => loader.SkipExample;

    public InMemoryBatchSource? CacheFeatures(Func<Tensor, Tensor> featurize, CancellationToken cancellationToken = default)
    {
        if (!loader.Transform.IsDeterministic || loader.Options.SkipBadImages) return null;
        // One pass in index order; the cached source replays the loader's own sampler, so batches match exactly.
        var inOrder = new DataLoader(loader.Dataset, loader.Transform, loader.Options with { Shuffle = false, SamplesPerClass = 0, DropLast = false });
        return InMemoryBatchSource.Featurized(inOrder.Epoch(0, cancellationToken).Select(b => new LabeledBatch(b.Images, b.Labels)), featurize, loader.Sampler);
    }

    public IEnumerable<LabeledBatch> Batches(int epoch, CancellationToken cancellationToken)
    {
        // A loader batch's tensors belong to no dispose scope; the LabeledBatch passes that ownership on.
        foreach (var batch in loader.Epoch(epoch, cancellationToken))
            yield return new LabeledBatch(batch.Images, batch.Labels);
    }
}

/// <summary>
/// Tensors already in memory (N, ...) with int64 labels (N): shuffled deterministically per
/// (seed, epoch), optionally class-balanced. Used for cached features and small synthetic tasks.
/// </summary>
public sealed class InMemoryBatchSource : IBatchSource, IDisposable
{
    private readonly Tensor _inputs;
    private readonly Tensor _labels;
    private readonly IBatchSampler _sampler;

    public InMemoryBatchSource(Tensor inputs, Tensor labels, int batchSize, bool shuffle, int seed, int samplesPerClass = 0, bool dropLast = false)
        : this(inputs, labels, Sampler(labels, batchSize, shuffle, seed, samplesPerClass, dropLast))
    {
    }

    /// <summary>Batches as <paramref name="sampler"/> draws them (the order of another source, for cached features).</summary>
    public InMemoryBatchSource(Tensor inputs, Tensor labels, IBatchSampler sampler)
    {
        _inputs = inputs.alias().DetachFromDisposeScope();
        _labels = labels.alias().DetachFromDisposeScope();
        SampleCount = (int)inputs.size(0);
        _sampler = sampler;
    }

    private static IBatchSampler Sampler(Tensor labels, int batchSize, bool shuffle, int seed, int samplesPerClass, bool dropLast)
    {
        if (samplesPerClass <= 0) return new RandomBatchSampler((int)labels.size(0), batchSize, shuffle, dropLast, seed);
        using var values = labels.to(int32);
        return new ClassBalancedBatchSampler(values.data<int>().ToArray(), Math.Max(1, batchSize / samplesPerClass), samplesPerClass, seed);
    }

    public int SampleCount { get; }
    public int BatchCount => _sampler.Batches(0).Count;

    public InMemoryBatchSource? CacheFeatures(Func<Tensor, Tensor> featurize, CancellationToken cancellationToken = default) =>
        Featurized(Chunks(256, cancellationToken), featurize, _sampler);

    /// <summary>The samples in index order, <paramref name="size"/> at a time (views; each batch owns its handles).</summary>
    private IEnumerable<LabeledBatch> Chunks(int size, CancellationToken cancellationToken)
    {
        for (long start = 0; start < SampleCount; start += size)
        {
            cancellationToken.ThrowIfCancellationRequested();
            var n = Math.Min(size, SampleCount - start);
            yield return new LabeledBatch(_inputs.narrow(0, start, n).DetachFromDisposeScope(), _labels.narrow(0, start, n).DetachFromDisposeScope());
        }
    }

    /// <summary>
    /// A source of <paramref name="featurize"/>(inputs) for batches given in index order, drawn by <paramref name="sampler"/>:
    /// the cache behind <see cref="IBatchSource.CacheFeatures"/>. The batches are disposed as they are consumed.
    /// </summary>
    internal static InMemoryBatchSource Featurized(IEnumerable<LabeledBatch> inOrder, Func<Tensor, Tensor> featurize, IBatchSampler sampler)
    {
        var features = new List<Tensor>();
        var labels = new List<Tensor>();
        try
        {
            foreach (var batch in inOrder)
                using (batch)
                using (NewDisposeScope())
                {
                    features.Add(featurize(batch.Images).detach().DetachFromDisposeScope());
                    labels.Add(batch.Labels.alias().DetachFromDisposeScope());
                }
            using var all = cat(features, 0);
            using var allLabels = cat(labels, 0);
            return new InMemoryBatchSource(all, allLabels, sampler);
        }
        finally
        {
            foreach (var t in features.Concat(labels)) t.Dispose();
        }
    }

    public TimeSpan WaitTime => TimeSpan.Zero;

    public IEnumerable<LabeledBatch> Batches(int epoch, CancellationToken cancellationToken)
    {
        foreach (var indices in _sampler.Batches(epoch))
        {
            cancellationToken.ThrowIfCancellationRequested();
            using var index = tensor(indices.Select(i => (long)i).ToArray(), device: _inputs.device);
            var images = _inputs.index_select(0, index).DetachFromDisposeScope();
            var labels = _labels.index_select(0, index).DetachFromDisposeScope();
            yield return new LabeledBatch(images, labels);
        }
    }

    public void Dispose()
    {
        _inputs.Dispose();
        _labels.Dispose();
    }
}
