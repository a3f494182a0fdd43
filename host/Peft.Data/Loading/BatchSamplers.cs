namespace Peft.Data;

/// <summary>Splits an epoch into batches of dataset indices; the same (seed, epoch) always gives the same batches.</summary>
public interface IBatchSampler
{
    IReadOnlyList<int[]> Batches(int epoch);
}

/// <summary>Sequential or shuffled batches over all samples; the shuffle is a function of (seed, epoch).</summary>
public sealed class RandomBatchSampler : IBatchSampler
{
    private readonly int _count, _batchSize;
    private readonly bool _shuffle, _dropLast;
    private readonly long _seed;

    public RandomBatchSampler(int count, int batchSize, bool shuffle, bool dropLast, long seed)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(batchSize, 1);
        (_count, _batchSize, _shuffle, _dropLast, _seed) = (count, batchSize, shuffle, dropLast, seed);
    }

    public IReadOnlyList<int[]> Batches(int epoch)
    {
        var order = Enumerable.Range(0, _count).ToArray();
        if (_shuffle) Shuffling.Shuffle(order.AsSpan(), Shuffling.ForEpoch(_seed, epoch));
        var n = _dropLast ? _count / _batchSize : (_count + _batchSize - 1) / _batchSize;
        return Enumerable.Range(0, n).Select(b => order[(b * _batchSize)..Math.Min(_count, (b + 1) * _batchSize)]).ToArray();
    }
}

/// <summary>
/// Class-balanced batches of <c>ClassesPerBatch</c> distinct classes × <c>SamplesPerClass</c> samples each (P×K sampling,
/// for methods that need several samples of each class in a batch). Classes are drawn uniformly without replacement per
/// batch; each class's samples are used in shuffled cycles (a new cycle starts when fewer than K are left), so the K
/// samples of a class in a batch are distinct unless the class has fewer than K, which then repeat. An epoch has ⌊N / (P·K)⌋ batches unless <c>batchesPerEpoch</c> says otherwise.
/// </summary>
public sealed class ClassBalancedBatchSampler : IBatchSampler
{
    private readonly int[][] _members; // per class with samples: its dataset indices
    private readonly int _classesPerBatch, _samplesPerClass, _batchesPerEpoch;
    private readonly long _seed;

    public ClassBalancedBatchSampler(IReadOnlyList<int> labels, int classesPerBatch, int samplesPerClass, long seed, int? batchesPerEpoch = null)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(classesPerBatch, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(samplesPerClass, 1);
        _members = Enumerable.Range(0, labels.Count).GroupBy(i => labels[i]).OrderBy(g => g.Key).Select(g => g.ToArray()).ToArray();
        if (classesPerBatch > _members.Length)
            throw new ArgumentException($"{classesPerBatch} classes per batch, but the dataset has samples of only {_members.Length} classes");
        (_classesPerBatch, _samplesPerClass, _seed) = (classesPerBatch, samplesPerClass, seed);
        _batchesPerEpoch = batchesPerEpoch ?? labels.Count / (classesPerBatch * samplesPerClass);
    }

    public IReadOnlyList<int[]> Batches(int epoch)
    {
        var rng = Shuffling.ForEpoch(_seed, epoch);
        var queues = _members.Select(m => m.ToArray()).ToArray();
        foreach (var q in queues) Shuffling.Shuffle(q.AsSpan(), rng);
        var next = new int[queues.Length];
        var classes = Enumerable.Range(0, queues.Length).ToArray();
        var batches = new int[_batchesPerEpoch][];
        for (var b = 0; b < batches.Length; b++)
        {
            // Partial Fisher–Yates: the first P entries become a uniform draw of distinct classes.
            for (var k = 0; k < _classesPerBatch; k++)
            {
                var j = k + rng.Next(classes.Length - k);
                (classes[k], classes[j]) = (classes[j], classes[k]);
            }
            var batch = new int[_classesPerBatch * _samplesPerClass];
            for (var k = 0; k < _classesPerBatch; k++)
            {
                var c = classes[k];
                var queue = queues[c];
                // A class with at least K samples starts a new cycle when fewer than K are left, so its K are distinct.
                if (queue.Length >= _samplesPerClass && next[c] + _samplesPerClass > queue.Length) Restart(c);
                for (var s = 0; s < _samplesPerClass; s++)
                {
                    if (next[c] == queue.Length) Restart(c);
                    batch[k * _samplesPerClass + s] = queue[next[c]++];
                }
            }
            batches[b] = batch;
        }
        return batches;

        void Restart(int c)
        {
            Shuffling.Shuffle(queues[c].AsSpan(), rng);
            next[c] = 0;
        }
    }
}
