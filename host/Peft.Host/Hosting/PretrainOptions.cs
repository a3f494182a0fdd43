using Peft.Configuration;

namespace Peft.Host.Hosting;

/// <summary>
/// `peft pretrain`: supervised pre-training of the Backbone from scratch, because no pretrained weights
/// can be downloaded here. Its output is an ordinary safetensors checkpoint the loaders read.
/// </summary>
[HyperParameters("Pretrain")]
[Description("Supervised pre-training of the backbone from scratch (peft pretrain); the result is cached.")]
public sealed partial record PretrainOptions
{
    [Required, Description("Checkpoint to write (safetensors, timm keys); reused when it exists with the same settings.")]
    public string Output { get; init; } = "runs/pretrain/backbone.safetensors";

    [Description("Class ids of the pre-training data (relabelled 0..k-1); empty: every class.")]
    public List<int> Classes { get; init; } = [];

    [Range(0, 10000000), Description("Pre-training images drawn per seed, balanced over classes; 0: all.")]
    public int TrainSamples { get; init; }

    [Range(1, 10000), Description("Epochs.")]
    public int Epochs { get; init; } = 10;

    [Range(1, 4096), Description("Images per batch.")]
    public int BatchSize { get; init; } = 128;

    [Range(0, 10), Description("AdamW learning rate.")]
    public double Lr { get; init; } = 1e-3;

    [Range(0, 10), Description("AdamW weight decay.")]
    public double WeightDecay { get; init; } = 0.05;

    [Range(0, 1000), Description("Warm-up epochs.")]
    public int WarmupEpochs { get; init; } = 1;

    [Range(0, 1), Description("Dropout in the backbone while pre-training.")]
    public double DropRate { get; init; }
}
