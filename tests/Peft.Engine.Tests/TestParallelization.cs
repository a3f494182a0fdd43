// The process's resident memory and glibc's malloc counters are shared by every test, and libtorch's default
// generator is process-wide: MemoryTests and TorchEngineTests measure the whole process, and a test that seeds and
// draws must not interleave with another that draws. Run test classes one at a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
