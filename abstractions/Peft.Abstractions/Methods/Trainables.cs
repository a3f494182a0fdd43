using Peft.Abstractions.Backbone;
using Peft.Abstractions.Options;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Abstractions.Methods;

/// <summary>
/// The tensors a run trains, under the names its adapter file uses: the method's own parameters by
/// their module names, the backbone tensors it tunes as <c>backbone.&lt;name&gt;</c>.
/// </summary>
public static class Trainables
{
    public const string BackbonePrefix = "backbone.";

    public static IReadOnlyList<(string Name, Parameter Parameter)> Of(IPeftMethod method, IVisionBackbone backbone)
    {
        var result = method.Module.named_parameters().ToList();
        if (method.BackboneTrainables.Count > 0)
        {
            var wanted = method.BackboneTrainables.ToHashSet(StringComparer.Ordinal);
            var found = backbone.Module.named_parameters().Where(p => wanted.Contains(p.name)).ToList();
            if (found.Count != wanted.Count)
                throw new InvalidOperationException("the method names backbone tensors the backbone does not have: " +
                    string.Join(", ", wanted.Except(found.Select(f => f.name)).Order(StringComparer.Ordinal)));
            result.AddRange(found.Select(p => (BackbonePrefix + p.name, p.parameter)));
        }
        return result;
    }

    /// <summary>
    /// The classifier head inside the method's module, found by its role (<see cref="IClassifierHead"/>), not its name.
    /// A method without one would have its head bias decayed like a prompt: that is an error, not a silent default.
    /// </summary>
    public static IClassifierHead HeadOf(IPeftMethod method)
    {
        var heads = method.Module.modules().OfType<IClassifierHead>().ToList();
        return heads.Count == 1 ? heads[0] : throw new InvalidOperationException(
            $"{method.GetType().Name}'s module holds {heads.Count} classifier heads (modules implementing IClassifierHead, such as " +
            "ClassifierHead); the weight-decay groups need exactly one");
    }

    /// <summary>
    /// VPT's weight-decay rule: decay on every trainable tensor except the head bias; the head weight
    /// takes Trainer:HeadWeightDecay when set (DA-VPT decays its head separately).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> VptGroups(IPeftMethod method, IVisionBackbone backbone, TrainerOptions recipe)
    {
        var head = HeadOf(method);
        var all = Of(method, backbone);
        bool IsBias((string Name, Parameter Parameter) p) => ReferenceEquals(p.Parameter, head.Bias);
        bool IsWeight((string Name, Parameter Parameter) p) => ReferenceEquals(p.Parameter, head.Weight);
        var groups = new List<ParameterGroup>
        {
            new("decay", all.Where(p => !IsBias(p) && (recipe.HeadWeightDecay is null || !IsWeight(p))).ToList(), recipe.WeightDecay),
            new("head_bias", all.Where(IsBias).ToList(), 0.0),
        };
        if (recipe.HeadWeightDecay is { } headDecay)
            groups.Add(new("head_weight", all.Where(IsWeight).ToList(), headDecay));
        return groups.Where(g => g.Parameters.Count > 0).ToList();
    }

    public static long Count(IEnumerable<(string Name, Parameter Parameter)> parameters) => parameters.Sum(p => p.Parameter.numel());
}
