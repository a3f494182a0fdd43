using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using TorchSharp;
using static TorchSharp.torch;

namespace MyMethod.Tests;

/// <summary>A backbone with only a shape: enough to size the method and count its parameters.</summary>
internal sealed class SpecOnlyBackbone(VitSpec spec) : IVisionBackbone
{
    private sealed class Empty() : nn.Module(nameof(Empty));
    public VitSpec Spec => spec;
    public BackboneKind Kind => BackboneKind.Supervised;
    public nn.Module Module { get; } = new Empty();
    public Device Device => CPU;
    public string Identity => "spec-only";
    public ForwardTrace Forward(Tensor images, IBackboneHooks hooks) => throw new NotSupportedException();
    public Tensor FinalNorm(Tensor x) => throw new NotSupportedException();
}

public class MyMethodTests
{
    [Fact]
    public void Trainable_parameters_on_vit_b16_are_the_prompts_and_the_head()
    {
        var backbone = new SpecOnlyBackbone(VitSpec.Preset("vit-b16"));
        using var method = new MyMethodFactory().Create(new MethodContext(backbone, 100, new MyMethodOptions { PromptTokens = 10 }, Seed: 1));
        // p·D prompts + (D + 1)·C head on ViT-B/16 (D = 768), C = 100.
        Assert.Equal(10 * 768 + 769 * 100, Trainables.Count(Trainables.Of(method, backbone)));
    }
}
