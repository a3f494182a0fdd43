namespace Peft.Torch;

/// <summary>The ATen operators Peft.Torch calls, by schema name and overload (libtorch 1.13 and later).</summary>
internal static class Ops
{
    // creation
    internal static readonly Op Zeros = new("zeros"), Ones = new("ones"), Full = new("full"), Empty = new("empty", "memory_format");
    internal static readonly Op Arange = new("arange", "start_step"), Rand = new("rand"), Randn = new("randn");
    internal static readonly Op RandintLow = new("randint", "low"), Randperm = new("randperm");
    // shape
    internal static readonly Op View = new("view"), Reshape = new("reshape"), Permute = new("permute"), Transpose = new("transpose", "int");
    internal static readonly Op Cat = new("cat"), Stack = new("stack"), Narrow = new("narrow"), Slice = new("slice", "Tensor");
    internal static readonly Op IndexSelect = new("index_select"), Gather = new("gather"), Expand = new("expand");
    internal static readonly Op Flatten = new("flatten", "using_ints"), Unsqueeze = new("unsqueeze"), SqueezeDim = new("squeeze", "dim"), Squeeze = new("squeeze");
    internal static readonly Op Contiguous = new("contiguous"), Chunk = new("chunk"), Split = new("split", "Tensor"), Unbind = new("unbind", "int");
    internal static readonly Op Select = new("select", "int");
    internal static readonly Op Repeat = new("repeat"), Flip = new("flip"), Index = new("index", "Tensor"), T = new("t");
    // arithmetic
    internal static readonly Op Add = new("add", "Tensor"), AddScalar = new("add", "Scalar"), Sub = new("sub", "Tensor"), SubScalar = new("sub", "Scalar");
    internal static readonly Op Mul = new("mul", "Tensor"), MulScalar = new("mul", "Scalar"), Div = new("div", "Tensor"), DivScalar = new("div", "Scalar");
    internal static readonly Op Neg = new("neg"), Pow = new("pow", "Tensor_Scalar"), Exp = new("exp"), Log = new("log"), Sqrt = new("sqrt"), Rsqrt = new("rsqrt");
    internal static readonly Op Abs = new("abs"), Clamp = new("clamp"), Sign = new("sign"), Maximum = new("maximum"), Minimum = new("minimum");
    internal static readonly Op Where = new("where", "self"), MaskedFill = new("masked_fill", "Scalar");
    // comparison
    internal static readonly Op Eq = new("eq", "Tensor"), EqScalar = new("eq", "Scalar"), Ne = new("ne", "Tensor"), NeScalar = new("ne", "Scalar");
    internal static readonly Op Lt = new("lt", "Tensor"), LtScalar = new("lt", "Scalar"), Le = new("le", "Tensor"), LeScalar = new("le", "Scalar");
    internal static readonly Op Gt = new("gt", "Tensor"), GtScalar = new("gt", "Scalar"), Ge = new("ge", "Tensor"), GeScalar = new("ge", "Scalar");
    internal static readonly Op Equal = new("equal"), AllClose = new("allclose"), IsFinite = new("isfinite"), All = new("all"), Any = new("any");
    // reductions
    internal static readonly Op Sum = new("sum"), SumDim = new("sum", "dim_IntList"), Mean = new("mean"), MeanDim = new("mean", "dim");
    internal static readonly Op Max = new("max"), MaxDim = new("max", "dim"), Min = new("min"), MinDim = new("min", "dim");
    internal static readonly Op Argmax = new("argmax"), Logsumexp = new("logsumexp"), VectorNorm = new("linalg_vector_norm");
    internal static readonly Op Var = new("var", "correction"), Std = new("std", "correction"), Cumsum = new("cumsum"), TopK = new("topk"), Sort = new("sort");
    // linear algebra and nn
    internal static readonly Op Matmul = new("matmul"), Bmm = new("bmm"), Linear = new("linear"), Conv2d = new("conv2d");
    internal static readonly Op Softmax = new("softmax", "int"), LogSoftmax = new("log_softmax", "int"), LayerNorm = new("layer_norm");
    internal static readonly Op Gelu = new("gelu"), Relu = new("relu"), Sigmoid = new("sigmoid"), Tanh = new("tanh");
    internal static readonly Op Dropout = new("dropout"), FeatureDropout = new("feature_dropout"), CrossEntropy = new("cross_entropy_loss");
    internal static readonly Op UpsampleBilinear = new("upsample_bilinear2d", "vec"), OneHot = new("one_hot"), CosineSimilarity = new("cosine_similarity");
    internal static readonly Op ScaledDotProductAttention = new("scaled_dot_product_attention");
    // conversion and autograd
    internal static readonly Op ToCopy = new("_to_copy"), Detach = new("detach"), Clone = new("clone"), Item = new("item");
    // in place
    internal static readonly Op Copy_ = new("copy_"), Fill_ = new("fill_", "Scalar"), Zero_ = new("zero_");
    internal static readonly Op Mul_ = new("mul_", "Tensor"), MulScalar_ = new("mul_", "Scalar"), Add_ = new("add_", "Tensor"), AddScalar_ = new("add_", "Scalar");
    internal static readonly Op Addcmul_ = new("addcmul_"), Addcdiv_ = new("addcdiv_"), Lerp_ = new("lerp_", "Scalar"), Clamp_ = new("clamp_");
    internal static readonly Op Normal_ = new("normal_"), Uniform_ = new("uniform_"), Div_ = new("div_", "Tensor"), DivScalar_ = new("div_", "Scalar");
}

/// <summary>Operators added for torch.nn, torch.nn.init and torch.optim.</summary>
internal static class NNOps
{
    internal static readonly Op SetData = new("set_data"), Erf = new("erf"), Erfinv_ = new("erfinv_");
}
