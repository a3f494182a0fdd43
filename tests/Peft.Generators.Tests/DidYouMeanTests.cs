using Peft.Configuration;

namespace Peft.Generators.Tests;

public class DidYouMeanTests
{
    [Theory]
    [InlineData("PromptTokens", "PromptTokens", 0)]
    [InlineData("PromtTokens", "PromptTokens", 1)]
    [InlineData("prompttokens", "PromptTokens", 0)]
    [InlineData("Rnak", "Rank", 1)]
    [InlineData("kitten", "sitting", 3)]
    [InlineData("", "abc", 3)]
    public void Distance_counts_insertions_deletions_substitutions_and_transpositions(string a, string b, int expected)
    {
        Assert.Equal(expected, DidYouMean.Distance(a, b));
        Assert.Equal(expected, DidYouMean.Distance(b, a));
    }

    [Theory]
    [InlineData("Epocs", "Epochs")]
    [InlineData("LearningRat", "LearningRate")]
    [InlineData("Shuffel", "Shuffle")]
    [InlineData("Colour", null)]
    [InlineData("Ep", null)]
    public void Suggest_returns_only_near_misses(string input, string? expected)
    {
        Assert.Equal(expected, DidYouMean.Suggest(input, ["Epochs", "LearningRate", "Shuffle", "Seed"]));
    }
}
