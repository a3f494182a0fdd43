namespace Peft.Data;

/// <summary>Seeded randomness that does not depend on thread scheduling.</summary>
public static class Shuffling
{
    /// <summary>Fisher–Yates shuffle in place.</summary>
    public static void Shuffle<T>(Span<T> items, Random rng)
    {
        for (var i = items.Length - 1; i > 0; i--)
        {
            var j = rng.Next(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    /// <summary>The generator of an epoch's sample order.</summary>
    public static Random ForEpoch(long seed, long epoch) => For(seed, epoch, -1);

    /// <summary>
    /// The generator of sample <paramref name="index"/>'s augmentation in <paramref name="epoch"/>: it depends on nothing else,
    /// so results do not depend on which worker thread builds the sample, or when.
    /// </summary>
    public static Random ForSample(long seed, long epoch, int index) => For(seed, epoch, index);

    private static Random For(long seed, long epoch, long stream)
    {
        var h = Mix(Mix(Mix(0x9E3779B97F4A7C15UL ^ (ulong)seed) ^ (ulong)epoch) ^ (ulong)stream);
        return new Random((int)(h ^ (h >> 32)));
    }

    // SplitMix64's finaliser: nearby inputs give unrelated outputs.
    private static ulong Mix(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }
}
