using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Data;

/// <summary>
/// A view of another dataset: selected samples (in the given order), optionally with labels remapped
/// to a new class list. Built by <see cref="DatasetExtensions"/>.
/// </summary>
public sealed class SubsetDataset : IImageDataset
{
    private readonly IImageDataset _source;
    private readonly int[] _indices;
    private readonly int[]? _labelMap;

    /// <param name="labelMap">Source label → new label, or null to keep labels (and class names) unchanged.</param>
    public SubsetDataset(IImageDataset source, int[] indices, int[]? labelMap = null, IReadOnlyList<string>? classNames = null,
        string? name = null)
    {
        _source = source;
        _indices = indices;
        _labelMap = labelMap;
        ClassNames = classNames ?? source.ClassNames;
        Name = name ?? source.Name;
        foreach (var i in indices)
            if ((uint)i >= (uint)source.Count)
                throw new ArgumentOutOfRangeException(nameof(indices), i, $"index outside {source.Name} (count {source.Count})");
    }

    public string Name { get; }
    public int Count => _indices.Length;
    public int ClassCount => ClassNames.Count;
    public IReadOnlyList<string> ClassNames { get; }

    /// <summary>The index in the source dataset of sample <paramref name="index"/>.</summary>
    public int SourceIndex(int index) => _indices[index];

    public int Label(int index)
    {
        var label = _source.Label(_indices[index]);
        return _labelMap is null ? label : _labelMap[label];
    }

    public string SourceName(int index) => _source.SourceName(_indices[index]);
    public Tensor LoadImage(int index) => _source.LoadImage(_indices[index]);
}

public static class DatasetExtensions
{
    /// <summary>All labels, in sample order.</summary>
    public static int[] Labels(this IImageDataset dataset)
    {
        var labels = new int[dataset.Count];
        for (var i = 0; i < labels.Length; i++) labels[i] = dataset.Label(i);
        return labels;
    }

    /// <summary>Number of samples per class.</summary>
    public static int[] ClassCounts(this IImageDataset dataset)
    {
        var counts = new int[dataset.ClassCount];
        for (var i = 0; i < dataset.Count; i++) counts[dataset.Label(i)]++;
        return counts;
    }

    /// <summary>The samples at <paramref name="indices"/>, labels unchanged.</summary>
    public static SubsetDataset Subset(this IImageDataset dataset, int[] indices) => new(dataset, indices);

    /// <summary>
    /// Keeps the samples of the given classes and renumbers them 0..k-1 in the given order
    /// (e.g. classes 5..9 become 0..4).
    /// </summary>
    public static SubsetDataset WithClasses(this IImageDataset dataset, params int[] classes)
    {
        var map = Enumerable.Repeat(-1, dataset.ClassCount).ToArray();
        for (var k = 0; k < classes.Length; k++)
        {
            if ((uint)classes[k] >= (uint)dataset.ClassCount)
                throw new ArgumentOutOfRangeException(nameof(classes), classes[k], $"{dataset.Name} has {dataset.ClassCount} classes");
            if (map[classes[k]] >= 0)
                throw new ArgumentException($"class {classes[k]} listed twice", nameof(classes));
            map[classes[k]] = k;
        }
        var indices = Enumerable.Range(0, dataset.Count).Where(i => map[dataset.Label(i)] >= 0).ToArray();
        var names = classes.Select(c => dataset.ClassNames[c]).ToArray();
        return new SubsetDataset(dataset, indices, map, names, $"{dataset.Name}[classes {string.Join(',', classes)}]");
    }

    /// <summary>
    /// A deterministic, class-stratified sample of <paramref name="count"/> samples for <paramref name="seed"/>:
    /// each class gets count / K samples, the remainder goes one each to classes picked by the seed, and a class
    /// too small for its share gives the rest to the others. Samples keep their dataset order.
    /// </summary>
    public static SubsetDataset StratifiedSample(this IImageDataset dataset, int count, int seed)
    {
        ArgumentOutOfRangeException.ThrowIfGreaterThan(count, dataset.Count);
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        var rng = new Random(seed);
        var byClass = new List<int>[dataset.ClassCount];
        for (var c = 0; c < byClass.Length; c++) byClass[c] = [];
        for (var i = 0; i < dataset.Count; i++) byClass[dataset.Label(i)].Add(i);
        foreach (var members in byClass) Shuffling.Shuffle(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(members), rng);

        // Hand out quotas one sample at a time, round-robin over the classes in a seeded order, skipping exhausted ones.
        var order = Enumerable.Range(0, byClass.Length).ToArray();
        Shuffling.Shuffle(order.AsSpan(), rng);
        var quota = new int[byClass.Length];
        for (var given = 0; given < count;)
            foreach (var c in order)
                if (given < count && quota[c] < byClass[c].Count)
                {
                    quota[c]++;
                    given++;
                }
        var chosen = byClass.SelectMany((members, c) => members.Take(quota[c])).Order().ToArray();
        return new SubsetDataset(dataset, chosen, name: $"{dataset.Name}[{count} stratified, seed {seed}]");
    }
}
