using static Peft.Torch.torch;
using static Peft.Torch.torch.nn;

namespace Peft.Torch.Tests;

/// <summary>A ViT-like module tree: blocks.{i}.norm, blocks.{i}.attn.qkv, head, plus buffers.</summary>
internal sealed class Attention : Module<Tensor, Tensor>
{
    public readonly Linear qkv;
    public Attention(long dim) => qkv = RegisterModule("qkv", new Linear(dim, 3 * dim));
    public override Tensor forward(Tensor x) => qkv.call(x).narrow(-1, 0, x.size(-1));
}

internal sealed class Block : Module<Tensor, Tensor>
{
    public readonly LayerNorm norm;
    public readonly Attention attn;

    public Block(long dim)
    {
        norm = RegisterModule("norm", new LayerNorm(dim));
        attn = RegisterModule("attn", new Attention(dim));
    }

    public override Tensor forward(Tensor x) => x + attn.call(norm.call(x));
}

internal sealed class TinyVit : Module<Tensor, Tensor>
{
    public readonly Parameter cls_token;
    public readonly ModuleList<Block> blocks;
    public readonly Dropout drop;
    public readonly Linear head;
    public readonly Tensor position_ids;

    public TinyVit(long dim = 4, int depth = 2, long classes = 3)
    {
        cls_token = RegisterParameter("cls_token", new Parameter(zeros(1, dim)));
        blocks = RegisterModule("blocks", new ModuleList<Block>(Enumerable.Range(0, depth).Select(_ => new Block(dim))));
        drop = RegisterModule("drop", new Dropout(0.5));
        head = RegisterModule("head", new Linear(dim, classes));
        position_ids = RegisterBuffer("position_ids", arange(0, dim));
        RegisterBuffer("scratch", zeros(dim), persistent: false);
    }

    public override Tensor forward(Tensor x)
    {
        var h = x + cls_token;
        foreach (var block in blocks) h = block.call(h);
        return head.call(drop.call(h));
    }
}

public class ModuleTests
{
    private static readonly string[] ParameterNames =
    [
        "cls_token",
        "blocks.0.norm.weight", "blocks.0.norm.bias", "blocks.0.attn.qkv.weight", "blocks.0.attn.qkv.bias",
        "blocks.1.norm.weight", "blocks.1.norm.bias", "blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias",
        "head.weight", "head.bias",
    ];

    [Fact]
    public void Nested_modules_name_parameters_buffers_and_modules_with_dots()
    {
        using var net = new TinyVit();
        Assert.Equal(ParameterNames, net.named_parameters().Select(e => e.name));
        Assert.Equal(new long[] { 12, 4 }, net.named_parameters().Single(e => e.name == "blocks.1.attn.qkv.weight").parameter.shape);
        Assert.Equal(["position_ids", "scratch"], net.named_buffers().Select(e => e.name));
        Assert.Equal(["", "blocks", "blocks.0", "blocks.0.norm", "blocks.0.attn", "blocks.0.attn.qkv", "blocks.1", "blocks.1.norm",
            "blocks.1.attn", "blocks.1.attn.qkv", "drop", "head"], net.named_modules().Select(e => e.name));
        Assert.Equal(["cls_token"], net.named_parameters(recurse: false).Select(e => e.name));
        Assert.Equal(["blocks", "drop", "head"], net.named_children().Select(e => e.name));
        Assert.Same(net.blocks[1].attn.qkv, net.get_submodule("blocks.1.attn.qkv"));
        Assert.Same(net.blocks[1].attn.qkv.weight, net.parameters().ElementAt(7));
        Assert.Throws<KeyNotFoundException>(() => net.get_submodule("blocks.7"));
    }

    [Fact]
    public void State_dict_holds_parameters_and_persistent_buffers_and_round_trips()
    {
        using var source = new TinyVit();
        using var target = new TinyVit();
        using var sd = source.state_dict();
        Assert.Equal(ParameterNames.Concat(["position_ids"]).Order(), sd.Keys.Order());
        // PyTorch's order: each module's parameters, then its buffers, then its children.
        Assert.Equal(["cls_token", "position_ids", "blocks.0.norm.weight"], sd.Keys.Take(3));
        Assert.False(sd["head.weight"].requires_grad);

        Assert.False(source.head.weight.equal(target.head.weight));
        var result = target.load_state_dict(sd);
        Assert.Empty(result.MissingKeys);
        Assert.Empty(result.UnexpectedKeys);
        foreach (var ((name, p), (_, q)) in source.named_parameters().Zip(target.named_parameters()))
            Assert.True(p.equal(q), name);
        Assert.True(target.head.weight.requires_grad); // loading copies values, it does not replace parameters

        source.eval();
        target.eval();
        using var x = randn(2, 4);
        using var ys = source.call(x);
        using var yt = target.call(x);
        Assert.True(ys.equal(yt));
    }

    [Fact]
    public void Strict_loading_reports_every_missing_unexpected_and_mismatched_key_and_copies_nothing()
    {
        using var net = new TinyVit();
        using var before = net.head.bias!.clone();
        using var sd = net.state_dict();
        var dict = sd.ToDictionary(kv => kv.Key, kv => kv.Value);
        dict.Remove("blocks.0.norm.bias");
        dict.Remove("head.weight");
        dict["head.bias"] = zeros(3);
        dict["blocks.1.attn.qkv.weight"] = zeros(4, 4);
        dict["cls_token"] = zeros(4);
        dict["pos_embed"] = zeros(1, 5, 4);
        dict["blocks.9.norm.weight"] = zeros(4);

        var e = Assert.Throws<StateDictException>(() => net.load_state_dict(dict));
        Assert.Equal(["blocks.0.norm.bias", "head.weight"], e.MissingKeys);
        Assert.Equal(["blocks.9.norm.weight", "pos_embed"], e.UnexpectedKeys.Order()); // in the dictionary's order
        Assert.Equal(["cls_token", "blocks.1.attn.qkv.weight"], e.SizeMismatches.Select(m => m.Key));
        Assert.Equal(new long[] { 12, 4 }, e.SizeMismatches[1].ExpectedShape);
        Assert.Equal(new long[] { 4, 4 }, e.SizeMismatches[1].FoundShape);
        foreach (var text in new[]
                 {
                     "Missing key(s) in state_dict: \"blocks.0.norm.bias\", \"head.weight\".",
                     "size mismatch for cls_token: copying a param with shape [4] from checkpoint, the shape in current model is [1, 4].",
                     "size mismatch for blocks.1.attn.qkv.weight: copying a param with shape [4, 4] from checkpoint, the shape in current model is [12, 4].",
                 })
            Assert.Contains(text, e.Message);
        Assert.Contains("Unexpected key(s) in state_dict: ", e.Message);
        Assert.Contains("\"pos_embed\"", e.Message);
        Assert.Contains("\"blocks.9.norm.weight\"", e.Message);
        Assert.True(net.head.bias!.equal(before)); // validated before anything was copied

        // Not strict: shape mismatches are still errors (as in PyTorch), but only they are listed.
        var e2 = Assert.Throws<StateDictException>(() => net.load_state_dict(dict, strict: false));
        Assert.Empty(e2.MissingKeys);
        Assert.Equal(2, e2.SizeMismatches.Count);
    }

    [Fact]
    public void Non_strict_loading_copies_what_fits_and_returns_the_rest()
    {
        using var net = new TinyVit();
        var dict = new Dictionary<string, Tensor> { ["head.bias"] = full([3], 7.0), ["extra"] = ones(1) };
        var result = net.load_state_dict(dict, strict: false);
        Assert.Equal(["extra"], result.UnexpectedKeys);
        Assert.Equal(ParameterNames.Length + 1 - 1, result.MissingKeys.Count);
        Assert.DoesNotContain("head.bias", result.MissingKeys);
        Assert.Equal(new float[] { 7, 7, 7 }, net.head.bias!.data<float>());
    }

    [Fact]
    public void Freezing_stops_gradients_except_for_unfrozen_parts()
    {
        using var net = new TinyVit();
        net.Freeze();
        Assert.All(net.parameters(), p => Assert.False(p.requires_grad));
        net.head.Unfreeze();
        net.cls_token.requires_grad_(true);
        Assert.Equal(["cls_token", "head.weight", "head.bias"], net.named_parameters().Where(e => e.parameter.requires_grad).Select(e => e.name));

        using (var scope = NewDisposeScope())
            net.call(randn(2, 4)).sum().backward();
        Assert.NotNull(net.head.weight.grad);
        Assert.NotNull(net.cls_token.grad);
        Assert.Null(net.blocks[0].attn.qkv.weight.grad);
        net.zero_grad();
        Assert.All(net.parameters(), p => Assert.Null(p.grad));
    }

    [Fact]
    public void Train_and_eval_propagate_to_every_descendant()
    {
        using var net = new TinyVit();
        Assert.All(net.modules(), m => Assert.True(m.training));
        net.eval();
        Assert.All(net.modules(), m => Assert.False(m.training));
        using var x = randn(8, 4);
        using var a = net.call(x);
        using var b = net.call(x);
        Assert.True(a.equal(b)); // dropout is off
        net.train();
        Assert.True(net.blocks[1].attn.qkv.training && net.drop.training);
    }

    [Fact]
    public void Sequential_and_ModuleList_name_children_by_index()
    {
        using var seq = new Sequential(new Linear(3, 5), new ReLU(), new Linear(5, 2));
        Assert.Equal(["0.weight", "0.bias", "2.weight", "2.bias"], seq.named_parameters().Select(e => e.name));
        Assert.Equal(3, seq.Count);
        Assert.IsType<ReLU>(seq[1]);
        seq.append(new Identity());
        Assert.Equal(["0", "1", "2", "3"], seq.named_children().Select(e => e.name));

        using var x = randn(4, 3);
        using var y = seq.call(x);
        var l0 = (Linear)seq[0];
        var l2 = (Linear)seq[2];
        using var expected = nn.functional.linear(nn.functional.relu(nn.functional.linear(x, l0.weight, l0.bias)), l2.weight, l2.bias);
        Assert.True(y.allclose(expected));

        using var list = new ModuleList(new Linear(2, 2), new Sequential(new Linear(2, 2, bias: false)));
        Assert.Equal(["0.weight", "0.bias", "1.0.weight"], list.named_parameters().Select(e => e.name));
        Assert.IsType<Sequential>(list[1]);
        Assert.Contains("(1): Sequential(", list.ToString());
        Assert.Contains("(0): Linear(in_features=2, out_features=2, bias=False)", list.ToString());
    }

    [Fact]
    public void Registration_rejects_dotted_and_clashing_names_and_shared_parameters_are_listed_once()
    {
        using var net = new TinyVit();
        Assert.Throws<ArgumentException>(() => net.RegisterParameter("a.b", new Parameter(zeros(1))));
        Assert.Throws<ArgumentException>(() => net.RegisterBuffer("head", zeros(1)));
        Assert.Throws<ArgumentException>(() => net.RegisterModule("cls_token", new ReLU()));

        using var shared = new Linear(2, 2);
        using var tied = new Sequential(shared, new ReLU(), shared);
        Assert.Equal(["0.weight", "0.bias"], tied.named_parameters().Select(e => e.name));
    }

    [Fact]
    public void To_dtype_converts_in_place_keeping_parameter_identity()
    {
        using var net = new TinyVit();
        var weight = net.head.weight;
        using var before = weight.to(float64);
        using (var s = NewDisposeScope())
            net.call(randn(1, 4)).sum().backward();
        net.to(float64);
        Assert.Same(weight, net.head.weight);
        Assert.Equal(ScalarType.Float64, weight.dtype);
        Assert.True(weight.requires_grad);
        Assert.True(weight.equal(before));
        using (var g = weight.grad!) Assert.Equal(ScalarType.Float64, g.dtype);
        Assert.Equal(ScalarType.Int64, net.position_ids.dtype); // integer buffers keep their dtype
        net.to(Device.CPU);
        Assert.Equal(Device.CPU, weight.device);
        using var y = net.call(randn([2, 4], float64));
        Assert.Equal(ScalarType.Float64, y.dtype);
        Assert.Throws<ArgumentException>(() => net.to(int32));
    }

    [Fact]
    public void Parameters_outlive_dispose_scopes_and_die_with_their_module()
    {
        Linear layer;
        using (NewDisposeScope())
            layer = new Linear(3, 2);
        Assert.False(layer.weight.IsDisposed);
        Assert.True(layer.weight.requires_grad && layer.weight.is_leaf);
        layer.Dispose();
        Assert.True(layer.weight.IsDisposed && layer.bias!.IsDisposed);

        using var source = ones(3).mul(2.0).requires_grad_();
        using var derived = source * 3.0;
        using var p = new Parameter(derived);
        Assert.True(p.is_leaf && p.requires_grad);
        Assert.Equal(new float[] { 6, 6, 6 }, p.data<float>());
        using var frozen = new Parameter(ones(2), requires_grad: false);
        Assert.False(frozen.requires_grad);
    }
}
