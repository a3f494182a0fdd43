using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using Peft.Abstractions.Backbone;
using Peft.Abstractions.Methods;
using Peft.Abstractions.Options;
using Peft.Configuration;
using Peft.Engine.Formats;
using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace Peft.Training;

/// <summary>
/// A run's directory: <c>config.json</c>, <c>metrics.jsonl</c>, <c>results.json</c>,
/// <c>adapter.safetensors</c> (the trained tensors and a manifest) and <c>checkpoint/state.safetensors</c>
/// (trainable tensors, the optimizer state in TorchSharp's own format as bytes, and the RNG state, with the run position
/// in its manifest: one file, written atomically). The curves of metrics.jsonl are also kept as TensorBoard event files
/// (<c>tensorboard/</c>, `tensorboard --logdir runs`) and as a small SVG (<c>curves.svg</c>); <c>status.json</c> says
/// whether the run is running, finished, interrupted or failed; <c>identity.json</c> records what decides the run's result
/// (<see cref="RunIdentity"/>), and <c>run.lock</c> who is running in it (<see cref="RunLock"/>).
/// </summary>
public sealed class RunDirectory(string path)
{
    public const string ManifestKey = "peft.manifest";
    private const string MethodPrefix = "method.";
    private const string OptimizerKey = "optimizer";
    private const string RngKey = "rng_state";

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = false,
        DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull,
        NumberHandling = JsonNumberHandling.AllowNamedFloatingPointLiterals,
        PropertyNamingPolicy = JsonNamingPolicy.CamelCase,
        Converters = { new JsonStringEnumConverter(JsonNamingPolicy.KebabCaseLower) },
    };

    public string Path { get; } = System.IO.Path.GetFullPath(path);
    public string ConfigFile => System.IO.Path.Combine(Path, "config.json");
    public string MetricsFile => System.IO.Path.Combine(Path, "metrics.jsonl");
    public string ResultsFile => System.IO.Path.Combine(Path, "results.json");
    public string AdapterFile => System.IO.Path.Combine(Path, "adapter.safetensors");
    public string CheckpointFile => System.IO.Path.Combine(Path, "checkpoint", "state.safetensors");
    public string StatusFile => System.IO.Path.Combine(Path, "status.json");
    public string TensorBoardDirectory => System.IO.Path.Combine(Path, "tensorboard");
    public string CurvesFile => System.IO.Path.Combine(Path, "curves.svg");
    public string IdentityFile => System.IO.Path.Combine(Path, "identity.json");
    public bool HasCheckpoint => File.Exists(CheckpointFile);

    /// <summary>Records where the run stands, with this process's id (a "running" run whose process is gone was killed).</summary>
    public void MarkStatus(RunStatus status, string? message = null) =>
        WriteAtomically(StatusFile, JsonSerializer.Serialize(new RunStatusRecord(status, Environment.ProcessId, DateTimeOffset.UtcNow, message), Json) + "\n");

    public RunStatusRecord? ReadStatus() => File.Exists(StatusFile)
        ? JsonSerializer.Deserialize<RunStatusRecord>(File.ReadAllText(StatusFile), Json)
        : null;

    /// <summary>
    /// Claims the directory for a run of <paramref name="identity"/> (the caller holds its <see cref="RunLock"/>). Without
    /// <paramref name="resume"/> the run starts over: what the directory holds of an earlier run is deleted. Otherwise the
    /// directory must be new or hold a run of the same identity: one with other settings (another learning rate, other
    /// classes, more epochs...) is refused, listing every differing key, so that it is neither resumed under the new
    /// settings nor reported as their result. Then config.json and identity.json are written.
    /// </summary>
    /// <param name="discardOthers">Discard a run of another identity rather than refuse it (a cache, such as pre-training's).</param>
    /// <exception cref="ConfigurationException">The directory holds a run of another identity, or an older one without any.</exception>
    public void Begin(RunIdentity identity, bool resume, string? configJson, bool discardOthers = false)
    {
        var recorded = ReadIdentity();
        if (!resume || (discardOthers && (recorded is null || identity.Differences(recorded).Count > 0))) Discard();
        else if (recorded is not null)
        {
            var differences = identity.Differences(recorded);
            if (differences.Count > 0)
                throw new ConfigurationException([
                    .. differences.Select(d => ConfigIssue.Custom(d.Key, d.Message)),
                    ConfigIssue.Custom("Run:Name", $"run directory {Path} holds a run with other settings ({differences.Count} differ, above): its " +
                        "results are not this configuration's. Set Run:Resume=false to discard it and start over, or choose another Run:Name"),
                ]);
        }
        else if (new[] { MetricsFile, ResultsFile, AdapterFile, CheckpointFile }.Any(File.Exists))
            throw new ConfigurationException([ConfigIssue.Custom("Run:Name", $"run directory {Path} holds a run that records no settings to compare " +
                "(written by an older peft): set Run:Resume=false to discard it and start over, or choose another Run:Name")]);
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "checkpoint"));
        WriteAtomically(IdentityFile, identity.ToJson());
        if (configJson is not null) WriteAtomically(ConfigFile, configJson);
    }

    public RunIdentity? ReadIdentity() => File.Exists(IdentityFile) ? RunIdentity.FromJson(File.ReadAllText(IdentityFile)) : null;

    /// <summary>Deletes what an earlier run left (peft.log, which the host appends to, stays).</summary>
    private void Discard()
    {
        foreach (var file in new[] { MetricsFile, ResultsFile, AdapterFile, CurvesFile, StatusFile, IdentityFile, ConfigFile })
            File.Delete(file);
        foreach (var folder in new[] { System.IO.Path.GetDirectoryName(CheckpointFile)!, TensorBoardDirectory })
            if (Directory.Exists(folder)) Directory.Delete(folder, recursive: true);
        _writer = null;
    }

    /// <summary>Starts a directory without an identity check (tests of the files alone).</summary>
    public void Create(string? configJson)
    {
        Directory.CreateDirectory(System.IO.Path.Combine(Path, "checkpoint"));
        if (configJson is not null) File.WriteAllText(ConfigFile, configJson);
    }

    /// <summary>Appends an epoch's line to metrics.jsonl, its scalars to the TensorBoard events, and redraws curves.svg.</summary>
    public void AppendMetrics(EpochMetrics metrics)
    {
        metrics = metrics with { Time = DateTimeOffset.UtcNow.ToUnixTimeSeconds() };
        File.AppendAllText(MetricsFile, JsonSerializer.Serialize(metrics, Json) + "\n");
        TensorBoard.Write(Writer(), metrics);
        File.WriteAllText(CurvesFile, RunCurves.Svg(ReadMetrics(), System.IO.Path.GetFileName(Path)));
    }

    /// <summary>
    /// Keeps the metric lines of the first <paramref name="completedEpochs"/> epochs (those of the checkpoint a resume starts
    /// from; none when a run starts over) and rewrites the TensorBoard events and curves from them, so that no epoch is
    /// reported twice.
    /// </summary>
    public void TruncateMetrics(int completedEpochs)
    {
        var kept = ReadMetrics().Where(m => m.Epoch <= completedEpochs).ToList();
        if (File.Exists(MetricsFile)) File.WriteAllLines(MetricsFile, kept.Select(m => JsonSerializer.Serialize(m, Json)));
        if (Directory.Exists(TensorBoardDirectory)) Directory.Delete(TensorBoardDirectory, recursive: true);
        _writer = null;
        foreach (var m in kept) TensorBoard.Write(Writer(), m);
        if (kept.Count > 0) File.WriteAllText(CurvesFile, RunCurves.Svg(kept, System.IO.Path.GetFileName(Path)));
        else File.Delete(CurvesFile);
    }

    private SummaryWriter? _writer;
    private SummaryWriter Writer() => _writer ??= torch.utils.tensorboard.SummaryWriter(TensorBoardDirectory);

    /// <summary>The epochs' metrics; a last line cut short (the disk filled, the process was killed while appending) is not an epoch.</summary>
    public IReadOnlyList<EpochMetrics> ReadMetrics()
    {
        if (!File.Exists(MetricsFile)) return [];
        var lines = File.ReadAllLines(MetricsFile).Where(l => l.Length > 0).ToList();
        var metrics = new List<EpochMetrics>(lines.Count);
        for (var i = 0; i < lines.Count; i++)
        {
            try
            {
                metrics.Add(JsonSerializer.Deserialize<EpochMetrics>(lines[i], Json)!);
            }
            catch (JsonException) when (i == lines.Count - 1)
            {
                // Torn by an interrupted append: the epoch's checkpoint, written after it, does not exist either.
            }
        }
        return metrics;
    }

    public TrainingResult? ReadResults() => File.Exists(ResultsFile)
        ? JsonSerializer.Deserialize<TrainingResult>(File.ReadAllText(ResultsFile), Json)
        : null;

    public void WriteResults(TrainingResult result) =>
        WriteAtomically(ResultsFile, JsonSerializer.Serialize(result, new JsonSerializerOptions(Json) { WriteIndented = true }) + "\n");

    /// <summary>The final trained tensors with a manifest naming the method, its options and the backbone.</summary>
    public void WriteAdapter(IPeftMethod method, IReadOnlyList<(string Name, Parameter Parameter)> trainables, string methodId,
        IHyperParameters options, string backboneIdentity, VitSpec spec, string device, Precision precision)
    {
        var manifest = new AdapterManifest(methodId, ContentHashing.CanonicalText(options), options.ContentHash(), backboneIdentity,
            JsonSerializer.Serialize(spec, Json), device, precision);
        using var tensors = TrainedTensors(method, trainables);
        SafeTensors.Save(AdapterFile, tensors.Items, new Dictionary<string, string> { [ManifestKey] = JsonSerializer.Serialize(manifest, Json) });
    }

    /// <summary>Reads an adapter file's manifest and tensors.</summary>
    public static (AdapterManifest Manifest, Dictionary<string, Tensor> Tensors) ReadAdapter(string file)
    {
        using var reader = SafeTensors.Open(file);
        if (!reader.Metadata.TryGetValue(ManifestKey, out var text))
            throw new InvalidDataException($"{file} is not a Peft adapter file (no {ManifestKey} metadata)");
        return (JsonSerializer.Deserialize<AdapterManifest>(text, Json)!, reader.LoadAll());
    }

    /// <summary>
    /// Copies trained tensors (an adapter file's or a checkpoint's) back: the method's whole state, strictly,
    /// and each tuned backbone tensor (<paramref name="trainables"/>, from <see cref="Trainables.Of"/>).
    /// </summary>
    public static void ApplyAdapter(IReadOnlyDictionary<string, Tensor> tensors, IPeftMethod method,
        IReadOnlyList<(string Name, Parameter Parameter)> trainables, string source)
    {
        var methodState = tensors.Where(kv => kv.Key.StartsWith(MethodPrefix, StringComparison.Ordinal))
            .ToDictionary(kv => kv.Key[MethodPrefix.Length..], kv => kv.Value);
        StrictState.Load(method.Module, methodState, source);
        var tuned = trainables.Where(t => t.Name.StartsWith(Trainables.BackbonePrefix, StringComparison.Ordinal)).ToList();
        var saved = tensors.Keys.Where(k => k.StartsWith(Trainables.BackbonePrefix, StringComparison.Ordinal)).ToHashSet();
        var missing = tuned.Select(t => t.Name).Where(n => !saved.Contains(n)).ToList();
        var unexpected = saved.Except(tuned.Select(t => t.Name)).Order(StringComparer.Ordinal).ToList();
        if (missing.Count + unexpected.Count > 0)
            throw new InvalidDataException("the saved backbone tensors do not match the method's: " +
                (missing.Count > 0 ? $"missing {string.Join(", ", missing)}" : "") +
                (unexpected.Count > 0 ? $"{(missing.Count > 0 ? "; " : "")}unexpected {string.Join(", ", unexpected)}" : ""));
        using var noGrad = no_grad();
        foreach (var (name, p) in tuned) p.copy_(tensors[name]);
    }

    /// <param name="scheduleStep">The schedule's step index now (epochs or optimizer steps taken, by its unit).</param>
    /// <param name="identity">The run's identity hash (<see cref="RunIdentity.Hash"/>): a checkpoint resumes only its own run.</param>
    public void SaveCheckpoint(RunState state, IPeftMethod method, IReadOnlyList<(string Name, Parameter Parameter)> trainables,
        OptimizerHelper optimizer, int scheduleStep, string methodId, IHyperParameters options, string backboneIdentity, string identity)
    {
        using var tensors = TrainedTensors(method, trainables);
        // TorchSharp's optimizer format (group options and per-parameter state, device-free), kept as bytes so that the
        // checkpoint stays one file that is replaced atomically.
        using (var buffer = new MemoryStream())
        {
            using (var writer = new BinaryWriter(buffer, System.Text.Encoding.UTF8, leaveOpen: true)) optimizer.save_state_dict(writer);
            tensors.Add(OptimizerKey, tensor(buffer.ToArray(), ScalarType.Byte));
        }
        tensors.Add(RngKey, get_rng_state());
        var manifest = new CheckpointManifest(methodId, options.ContentHash(), backboneIdentity, state, scheduleStep, identity);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(CheckpointFile)!);
        // SafeTensors.Save writes a temporary file and renames it: a crash mid-write keeps the previous checkpoint.
        SafeTensors.Save(CheckpointFile, tensors.Items, new Dictionary<string, string> { [ManifestKey] = JsonSerializer.Serialize(manifest, Json) });
    }

    /// <summary>Restores trained tensors, optimizer and RNG; returns the run position and the schedule's step index.</summary>
    /// <exception cref="InvalidDataException">
    /// The checkpoint is corrupt, or belongs to another run; the message names it and says how to go on (Run:Resume=false).
    /// </exception>
    public (RunState State, int ScheduleStep) LoadCheckpoint(IPeftMethod method, IReadOnlyList<(string Name, Parameter Parameter)> trainables,
        OptimizerHelper optimizer, string identity)
    {
        try
        {
            using var reader = SafeTensors.Open(CheckpointFile);
            if (!reader.Metadata.TryGetValue(ManifestKey, out var text))
                throw new InvalidDataException($"it has no {ManifestKey} metadata");
            var manifest = JsonSerializer.Deserialize<CheckpointManifest>(text, Json)
                ?? throw new InvalidDataException($"its {ManifestKey} metadata is empty");
            if (manifest.Identity != identity)
                throw new InvalidDataException($"it belongs to another run (identity {manifest.Identity ?? "none"}, this run's is {identity})");
            foreach (var key in new[] { OptimizerKey, RngKey })
                if (!reader.Contains(key)) throw new InvalidDataException($"it has no '{key}' tensor");

            var all = reader.LoadAll();
            try
            {
                ApplyAdapter(all.Where(kv => kv.Key != OptimizerKey && kv.Key != RngKey).ToDictionary(), method, trainables, CheckpointFile);
                using (var bytes = new BinaryReader(new MemoryStream(all[OptimizerKey].bytes.ToArray())))
                    optimizer.load_state_dict(bytes);
                set_rng_state(all[RngKey]);
            }
            finally
            {
                foreach (var t in all.Values) t.Dispose();
            }
            return (manifest.State, manifest.ScheduleStep);
        }
        catch (Exception e) when (e is InvalidDataException or JsonException or EndOfStreamException or ArgumentException or InvalidOperationException
                                      or KeyNotFoundException)
        {
            var reason = e.Message.StartsWith(CheckpointFile, StringComparison.Ordinal) || e.Message.Contains($"'{CheckpointFile}'", StringComparison.Ordinal)
                ? e.Message
                : $"{CheckpointFile}: {e.Message}";
            throw new InvalidDataException($"cannot resume from the checkpoint: {reason}. Set Run:Resume=false to start the run over " +
                                           "(discarding it), or choose another Run:Name", e);
        }
    }

    /// <summary>The method's whole state (parameters and buffers) and the tuned backbone tensors.</summary>
    private static TensorBag TrainedTensors(IPeftMethod method, IReadOnlyList<(string Name, Parameter Parameter)> trainables)
    {
        var bag = new TensorBag();
        // state_dict's tensors are the module's own: the bag holds detached handles on them.
        foreach (var (name, t) in method.Module.state_dict()) bag.Add(MethodPrefix + name, t.detach());
        foreach (var (name, p) in trainables.Where(t => t.Name.StartsWith(Trainables.BackbonePrefix, StringComparison.Ordinal)))
            bag.Add(name, p.detach());
        return bag;
    }

    private static void WriteAtomically(string file, string text)
    {
        var temp = file + ".tmp";
        File.WriteAllText(temp, text);
        File.Move(temp, file, overwrite: true);
    }

    /// <summary>Named tensors to save, disposed together.</summary>
    private sealed class TensorBag : IDisposable
    {
        public List<KeyValuePair<string, Tensor>> Items { get; } = [];
        public void Add(string name, Tensor t) => Items.Add(new(name, t.DetachFromDisposeScope()));

        public void Dispose()
        {
            foreach (var (_, t) in Items) t.Dispose();
        }
    }
}

/// <summary>Where a run stands.</summary>
public enum RunStatus
{
    Running,
    Finished,
    Interrupted,
    Failed,
}

/// <summary>status.json: the run's state, the process that wrote it, when, and a failure's message.</summary>
public sealed record RunStatusRecord(RunStatus Status, int ProcessId, DateTimeOffset Updated, string? Message = null);

/// <summary>The scalars of an epoch as TensorBoard shows them, the epoch as the step.</summary>
internal static class TensorBoard
{
    public static void Write(SummaryWriter writer, EpochMetrics m)
    {
        void Scalar(string tag, double? value)
        {
            if (value is { } v && double.IsFinite(v)) writer.add_scalar(tag, (float)v, m.Epoch, m.Time);
        }
        Scalar("loss/cross_entropy", m.Loss);
        Scalar("loss/auxiliary", m.AuxiliaryLoss);
        Scalar("lr", m.Lr);
        Scalar("top1/train", m.TrainAccuracy);
        Scalar("top1/val", m.Val);
        Scalar("top1/test", m.Test);
        Scalar("images_per_second", m.ImagesPerSecond);
    }
}

/// <summary>What an adapter file says about itself.</summary>
/// <param name="Device">Where it was trained (informational: adapters load on any device).</param>
/// <param name="Precision">The backbone's precision while training (its tensors are fp32 whatever it was).</param>
public sealed record AdapterManifest(string Method, string Options, string OptionsHash, string BackboneIdentity, string Spec,
    string Device = "cpu", Precision Precision = Precision.Fp32);

/// <summary>What a checkpoint says about the run it belongs to (<paramref name="Identity"/>: its <see cref="RunIdentity.Hash"/>).</summary>
public sealed record CheckpointManifest(string Method, string OptionsHash, string BackboneIdentity, RunState State, int ScheduleStep, string? Identity = null);
