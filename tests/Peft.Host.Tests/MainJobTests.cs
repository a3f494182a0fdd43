using System.Diagnostics;
using System.Text.Json;
using Peft.Host.Hosting;

namespace Peft.Host.Tests;

/// <summary>The pretrain → train → eval path end to end, as processes, on a tiny ViT and real Fashion-MNIST.</summary>
public sealed class MainJobTests : IDisposable
{
    private readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("peft-job-");

    public void Dispose() => _dir.Delete(recursive: true);

    private string[] Config(string runName, int epochs = 5) =>
    [
        "Run:OutputDir=" + Path.Combine(_dir.FullName, "runs"), "Run:Name=" + runName, "Run:Seed=7",
        "Backbone:Preset=custom", "Backbone:ImageSize=28", "Backbone:PatchSize=7", "Backbone:Channels=1", "Backbone:Dim=32",
        "Backbone:Depth=2", "Backbone:Heads=2", "Backbone:MlpRatio=2",
        "Backbone:Checkpoint=" + Path.Combine(_dir.FullName, "backbone.safetensors"),
        "Pretrain:Output=" + Path.Combine(_dir.FullName, "backbone.safetensors"), "Pretrain:Classes=0,1,2,3,4",
        "Pretrain:TrainSamples=2000", "Pretrain:Epochs=2", "Pretrain:BatchSize=64",
        "Data:Classes=5,6,7,8,9", "Data:TrainSamples=400", "Data:ValSamples=50", "Trainer:BatchSize=32", "Data:Workers=1",
        "Method:Name=linear", "Trainer:Epochs=" + epochs, "Trainer:WarmupEpochs=1", "Trainer:EvalEvery=1", "Trainer:CheckpointEvery=1",
        "Trainer:BaseLr=1.0", "Trainer:WeightDecay=0",
    ];

    private void Pretrain()
    {
        var r = PeftProcess.Run(_dir.FullName, ["pretrain", .. Config("x")]);
        Assert.True(r.ExitCode == 0, r.StdOut + r.StdErr);
    }

    [Fact]
    public void Pretrain_is_cached_and_train_then_eval_report_the_same_accuracy()
    {
        Pretrain();
        Assert.True(File.Exists(Path.Combine(_dir.FullName, "backbone.safetensors")));
        var again = PeftProcess.Run(_dir.FullName, ["pretrain", .. Config("x")]);
        Assert.Equal(0, again.ExitCode);
        Assert.Contains("is up to date", again.StdOut);

        var train = PeftProcess.Run(_dir.FullName, ["train", .. Config("run")]);
        Assert.True(train.ExitCode == 0, train.StdOut + train.StdErr);
        var run = Path.Combine(_dir.FullName, "runs", "run");
        foreach (var file in new[] { "config.json", "metrics.jsonl", "results.json", "adapter.safetensors", "peft.log" })
            Assert.True(File.Exists(Path.Combine(run, file)), file + " missing");
        using var results = JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json")));
        var test = results.RootElement.GetProperty("lastEpoch").GetProperty("test").GetDouble();
        Assert.True(test > 0.4, $"test top-1 {test} (chance 0.2)");
        Assert.Equal(33 * 5, results.RootElement.GetProperty("trainableParameters").GetInt64());
        Assert.Equal(5, File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length);

        var eval = PeftProcess.Run(_dir.FullName, ["eval", .. Config("run")]);
        Assert.True(eval.ExitCode == 0, eval.StdOut + eval.StdErr);
        Assert.Contains($"test top-1 {test:P2}", eval.StdOut);
    }

    [Fact]
    public void A_killed_run_resumes_to_the_same_final_metrics()
    {
        Pretrain();
        // Through the images: on cached features a whole epoch of this tiny run takes milliseconds, too short to kill
        // between (the in-process resume tests cover the cached path).
        string[] Train(string name) => ["train", .. Config(name, epochs: 6), "Trainer:CacheFeatures=false"];
        var full = PeftProcess.Run(_dir.FullName, Train("whole"));
        Assert.True(full.ExitCode == 0, full.StdOut + full.StdErr);

        // Kill (SIGKILL, no chance to clean up) once the second epoch's checkpoint is written.
        var run = Path.Combine(_dir.FullName, "runs", "killed");
        using (var process = PeftProcess.Start(_dir.FullName, Train("killed")))
        {
            var deadline = Stopwatch.StartNew();
            while (!(File.Exists(Path.Combine(run, "metrics.jsonl")) && File.ReadAllLines(Path.Combine(run, "metrics.jsonl")).Length >= 2))
            {
                Assert.False(process.HasExited, "the run ended before it could be killed");
                Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(3), "no checkpoint within 3 minutes");
                Thread.Sleep(5);
            }
            process.Kill(entireProcessTree: true);
            process.WaitForExit();
        }
        Assert.False(File.Exists(Path.Combine(run, "results.json")));
        // `peft runs` tells the killed run (its process is gone) from the finished one.
        var listing = PeftProcess.Run(_dir.FullName, "runs", Path.Combine(_dir.FullName, "runs"));
        Assert.Equal(0, listing.ExitCode);
        Assert.Matches(@"killed\s.*linear.*interrupted \(killed\)", listing.StdOut);
        Assert.Matches(@"whole\s.*│ linear\s+│.*│\s+[0-9,]+\s+│\s+[0-9.]+ %\s+│\s+6/6\s+│\s+finished", listing.StdOut);

        var resumed = PeftProcess.Run(_dir.FullName, Train("killed"));
        Assert.True(resumed.ExitCode == 0, resumed.StdOut + resumed.StdErr);
        static string[] Metrics(string dir) => File.ReadAllLines(Path.Combine(dir, "metrics.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement)
            .Select(e => $"{e.GetProperty("epoch")} {e.GetProperty("loss")} {e.GetProperty("trainAccuracy")} {e.GetProperty("val")} {e.GetProperty("test")}")
            .ToArray();
        Assert.Equal(Metrics(Path.Combine(_dir.FullName, "runs", "whole")), Metrics(run));
    }

    [Fact]
    public void Ctrl_c_stops_at_a_batch_boundary_with_a_checkpoint_and_exit_130()
    {
        Pretrain();
        var run = Path.Combine(_dir.FullName, "runs", "interrupted");
        using var process = PeftProcess.Start(_dir.FullName,
            ["train", .. Config("interrupted", epochs: 200), "Trainer:CacheFeatures=false"]); // epochs long enough to interrupt
        var deadline = Stopwatch.StartNew();
        while (!File.Exists(Path.Combine(run, "metrics.jsonl")))
        {
            Assert.False(process.HasExited, "the run ended early");
            Assert.True(deadline.Elapsed < TimeSpan.FromMinutes(3), "no epoch within 3 minutes");
            Thread.Sleep(20);
        }
        using (var kill = Process.Start("kill", ["-INT", process.Id.ToString(System.Globalization.CultureInfo.InvariantCulture)]))
            kill.WaitForExit();
        Assert.True(process.WaitForExit(TimeSpan.FromMinutes(1)), "the run did not stop after SIGINT");
        Assert.Equal(ExitCodes.Interrupted, process.ExitCode);
        Assert.True(File.Exists(Path.Combine(run, "checkpoint", "state.safetensors")));
        Assert.Contains("\"status\":\"interrupted\"", File.ReadAllText(Path.Combine(run, "status.json")));
    }
}
