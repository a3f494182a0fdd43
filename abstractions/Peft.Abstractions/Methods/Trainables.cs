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
    /// VPT's weight-decay rule: decay on every trainable tensor except the head bias; the head weight
    /// takes Trainer:HeadWeightDecay when set (DA-VPT decays its head separately).
    /// </summary>
    public static IReadOnlyList<ParameterGroup> VptGroups(IPeftMethod method, IVisionBackbone backbone, TrainerOptions recipe,
        string headBias = "head.fc.bias", string headWeight = "head.fc.weight")
    {
        var all = Of(method, backbone);
        var groups = new List<ParameterGroup>
        {
            new("decay", all.Where(p => p.Name != headBias && (recipe.HeadWeightDecay is null || p.Name != headWeight)).ToList(), recipe.WeightDecay),
            new("head_bias", all.Where(p => p.Name == headBias).ToList(), 0.0),
        };
        if (recipe.HeadWeightDecay is { } headDecay)
            groups.Add(new("head_weight", all.Where(p => p.Name == headWeight).ToList(), headDecay));
        return groups.Where(g => g.Parameters.Count > 0).ToList();
    }

    public static long Count(IEnumerable<(string Name, Parameter Parameter)> parameters) => parameters.Sum(p => p.Parameter.numel());
}
