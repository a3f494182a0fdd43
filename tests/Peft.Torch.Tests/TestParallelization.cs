// libtorch's default CPU generator, grad mode's thread-local defaults, the thread count and the
// process's resident memory are shared by every test: a test that seeds the generator and draws from
// it (CoreTests.Random_tensors_follow_the_seed...) fails at random when another class initialises
// layers on a second thread, and the memory test measures the whole process. Run test classes one at
// a time.
[assembly: CollectionBehavior(DisableTestParallelization = true)]
