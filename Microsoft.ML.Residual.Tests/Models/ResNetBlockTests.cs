using System;
using System.Linq;
using Microsoft.ML.Residual.Models;
using Microsoft.VisualStudio.TestTools.UnitTesting;
using TorchSharp;
using static TorchSharp.torch;

namespace Microsoft.ML.Residual.Tests.Models;

[TestClass]
public sealed class ResNetBlockTests
{
    private static ResNet Build(string name, ResNetOptions options) => (ResNet)ResidualModels.Create(name, numClasses: 10, options: options);

    [TestMethod]
    [DataRow("resnet20", false)]
    [DataRow("resnet50", false)]
    [DataRow("preact_resnet18", true)]
    [DataRow("preact_resnet50", true)]
    public void ZeroInitResidual_EveryIdentityBlockIsExactlyTheIdentityAtInit(string name, bool preActivation)
    {
        using var scope = NewDisposeScope();
        ResNet model = Build(name, new ResNetOptions { ZeroInitResidual = true, Seed = 3 });
        ResNet reference = Build(name, new ResNetOptions { ZeroInitResidual = false, Seed = 3 });
        var identityBlocks = model.Blocks.Where(b => !b.named_children().Any(c => c.name == "downsample")).ToList();
        Assert.IsTrue(identityBlocks.Count > 0);
        foreach (bool training in new[] { true, false })
        {
            model.train(training);
            reference.train(training);
            for (int i = 0; i < identityBlocks.Count; i++)
            {
                ResNetBlock block = identityBlocks[i];
                // Post-activation blocks receive ReLU outputs, so their inputs are non-negative.
                Tensor input = randn(2, block.OutChannels, 8, 8);
                if (!preActivation) input = input.relu();
                Tensor output = block.call(input);
                Assert.IsTrue(output.IsEqualTo(input), $"{name} block {i} (training={training}) is not the identity");
            }
        }

        // Without the option the same blocks are not the identity, so the assertion above can fail.
        ResNetBlock plainInit = reference.Blocks.First(b => !b.named_children().Any(c => c.name == "downsample"));
        Tensor x = randn(2, plainInit.OutChannels, 8, 8).relu();
        Assert.IsFalse(plainInit.call(x).IsEqualTo(x));
    }

    [TestMethod]
    public void ShortcutOptions_ABC_HaveTheExpectedParameterCounts()
    {
        long a = ResidualModelsTests.CountParameters(Build("resnet20", new ResNetOptions { Shortcut = ShortcutOption.A }));
        long b = ResidualModelsTests.CountParameters(Build("resnet20", new ResNetOptions { Shortcut = ShortcutOption.B }));
        long c = ResidualModelsTests.CountParameters(Build("resnet20", new ResNetOptions { Shortcut = ShortcutOption.C }));
        Assert.AreEqual(269_722L, a);
        // B: a 1×1 projection + BN where the shape changes (16→32, 32→64).
        Assert.AreEqual(a + (16 * 32 + 2 * 32) + (32 * 64 + 2 * 64), b);
        // C: a projection on all nine blocks.
        long expectedC = a + 3 * (16 * 16 + 2 * 16) + (16 * 32 + 2 * 32) + 2 * (32 * 32 + 2 * 32) + (32 * 64 + 2 * 64) + 2 * (64 * 64 + 2 * 64);
        Assert.AreEqual(expectedC, c);
    }

    [TestMethod]
    public void ShortcutOptionA_SubsamplesAndZeroPadsChannels()
    {
        using var scope = NewDisposeScope();
        var shortcut = new ZeroPadShortcut(16, 32, 2);
        Tensor input = randn(1, 16, 8, 8);
        Tensor output = shortcut.call(input);
        CollectionAssert.AreEqual(new long[] { 1, 32, 4, 4 }, output.shape);
        Tensor expectedMiddle = input[.., .., TensorIndex.Slice(null, null, 2), TensorIndex.Slice(null, null, 2)];
        Assert.IsTrue(output[.., 8..24].IsEqualTo(expectedMiddle));
        Assert.AreEqual(0.0, output[.., 0..8].abs().sum().item<float>());
        Assert.AreEqual(0.0, output[.., 24..32].abs().sum().item<float>());
    }

    [TestMethod]
    public void ResidualScaling_ComputesOneMinusBetaTimesInputPlusAlphaTimesBranch()
    {
        using var scope = NewDisposeScope();
        // Pre-activation blocks have no ReLU after the addition, so y = (1-β)x + αF(x) is observable directly.
        ResNet unit = Build("preact_resnet18", new ResNetOptions { Seed = 5 });
        ResNet scaled = Build("preact_resnet18", new ResNetOptions { Seed = 6, ResidualScale = 2.0, IdentityDecay = 0.5 });
        ModelTestSupport.CopyWeights(unit, scaled);
        unit.eval();
        scaled.eval();
        Tensor x = randn(new long[] { 2, 64, 8, 8 }, generator: new Generator(5));
        Tensor unitOutput = unit.Blocks[0].call(x);
        Tensor residual = unitOutput - x;
        Tensor expected = x.Times(0.5).Plus(residual.Times(2.0));
        // Both blocks compute the same F(x) bit for bit (same weights, same kernels), and scaling by 0.5 or 2 is exact; the
        // roundings left are fl(x + F) and its − x here (u of |x + F| and of |F|, doubled), fl(0.5x + 2r) here and
        // fl(2F + 0.5x) in the block (u of the output each): ≤ γ₂·(|x + F| + |F| + |0.5x + 2F|) element by element.
        Tensor bound = unitOutput.abs().Plus(residual.abs()).Plus(expected.abs()).Times(Numerics.Gamma(2));
        Numerics.AssertWithin(scaled.Blocks[0].call(x), expected, bound, "(1 − β)·x + α·F(x)");
    }

    [TestMethod]
    public void PlainNetwork_HasNoShortcutsAndComputesReluOfTheBranchOnly()
    {
        using var scope = NewDisposeScope();
        ResNet plain = (ResNet)ResidualModels.Create("plain20", 10, options: new ResNetOptions { Seed = 1 });
        // β = 1 removes the identity path from a residual block: y = relu(0·x + F(x)), the plain block.
        ResNet withoutIdentity = Build("resnet20", new ResNetOptions { IdentityDecay = 1.0, Seed = 2 });
        ResNet residual = Build("resnet20", new ResNetOptions { Seed = 3 });
        ModelTestSupport.CopyWeights(plain, withoutIdentity);
        ModelTestSupport.CopyWeights(plain, residual);
        foreach (var m in new nn.Module[] { plain, withoutIdentity, residual }) m.eval();
        Tensor x = randn(new long[] { 2, 16, 8, 8 }, generator: new Generator(6)).relu();
        // The same F(x) bit for bit, and F + 0·x is F exactly: the same output.
        Assert.IsTrue(plain.Blocks[0].call(x).IsEqualTo(withoutIdentity.Blocks[0].call(x)));
        // With the identity the output moves by x itself (|x| up to about 4 here), far beyond any rounding.
        Assert.IsFalse(plain.Blocks[0].call(x).allclose(residual.Blocks[0].call(x), atol: 1e-3));
        Assert.IsTrue(plain.Blocks.All(b => !b.HasSkip));
        Assert.IsTrue(plain.named_modules().All(m => !m.name.Contains("downsample")));
    }

    [TestMethod]
    public void Highway_GateBiasDecidesBetweenCarryAndTransform()
    {
        using var scope = NewDisposeScope();
        ResNet carry = Build("resnet20", new ResNetOptions { Skip = SkipConnection.Highway, HighwayGateBias = -100, Seed = 7 });
        ResNet transform = Build("resnet20", new ResNetOptions { Skip = SkipConnection.Highway, HighwayGateBias = 100, Seed = 7 });
        ResNet plain = Build("plain20", new ResNetOptions { Seed = 7 });
        ModelTestSupport.CopyWeights(plain, transform);
        foreach (var m in new nn.Module[] { carry, transform, plain }) m.eval();
        Assert.IsTrue(carry.state_dict().ContainsKey("layer1.0.gate.weight"));
        Tensor x = randn(new long[] { 2, 16, 8, 8 }, generator: new Generator(8)).relu();
        // y = relu(t·F + (1 − t)·x), t = σ(gate(x)). Closed (bias −100): t < 2⁻²⁵, so 1 − t is 1 in float32 and y = fl(x + t·F),
        // which is x wherever x is non-zero (t·F is far below x's half ulp) and t·F elsewhere: |y − x| ≤ t·|F| plus the
        // rounding of t·F among float32's denormals (below 2⁻¹⁴⁹, which also covers F here and in the block differing by rounding).
        ResNetBlock closed = carry.Blocks[0];
        var layers = closed.named_children().ToDictionary(c => c.name, c => (nn.Module<Tensor, Tensor>)c.module);
        Tensor t = sigmoid(layers["gate"].call(x));
        Assert.IsTrue(t.max().item<float>() < Math.Pow(2, -25));
        Tensor branch = layers["bn2"].call(layers["conv2"].call(layers["bn1"].call(layers["conv1"].call(x)).relu()));
        Tensor bound = t.to_type(ScalarType.Float64).mul(branch.abs().to_type(ScalarType.Float64)).Plus(Math.Pow(2, -149));
        Numerics.AssertWithin(closed.call(x), x, bound, "a closed gate carries the input");
        // Open (bias +100): σ rounds to 1 in float32, so y = relu(1·F + 0·x) = relu(F), the plain block's output bit for bit.
        Assert.IsTrue(transform.Blocks[0].call(x).IsEqualTo(plain.Blocks[0].call(x)), "an open gate passes the branch");
    }

    [TestMethod]
    public void StochasticDepth_IsRandomInTrainingAndTheIdentityMapInEval()
    {
        using var scope = NewDisposeScope();
        ResNet dropped = Build("resnet20", new ResNetOptions { DropPathRate = 0.5, Seed = 9 });
        ResNet reference = Build("resnet20", new ResNetOptions { Seed = 9 });
        ModelTestSupport.CopyWeights(reference, dropped);
        Tensor x = randn(8, 3, 16, 16);
        dropped.eval();
        reference.eval();
        Assert.IsTrue(dropped.call(x).IsEqualTo(reference.call(x)), "eval mode ignores stochastic depth");
        dropped.train();
        manual_seed(1);
        Tensor first = dropped.call(x);
        manual_seed(2);
        Tensor second = dropped.call(x);
        Assert.IsFalse(first.allclose(second), "training mode drops branches at random");
    }

    [TestMethod]
    public void DropRate_AddsDropoutBeforeTheClassifierOnlyInTraining()
    {
        using var scope = NewDisposeScope();
        ResNet model = Build("resnet20", new ResNetOptions { DropRate = 0.5, Seed = 4 });
        using (var plain = Build("resnet20", new ResNetOptions { Seed = 4 }))
            CollectionAssert.AreEqual(plain.state_dict().Keys.ToList(), model.state_dict().Keys.ToList(), "dropout adds no state");
        Tensor x = randn(4, 3, 16, 16);
        model.eval();
        Assert.IsTrue(model.call(x).IsEqualTo(model.call(x)));
        model.train();
        manual_seed(1);
        Tensor a = model.call(x);
        manual_seed(2);
        Assert.IsFalse(a.allclose(model.call(x)));
    }

    [TestMethod]
    public void TrainingSteps_DoNotLeakTensors()
    {
        ResNet model = Build("resnet20", new ResNetOptions { Seed = 1, DropPathRate = 0.1 });
        ModelTestSupport.AssertTrainingStepsDoNotLeak(model, randn(4, 3, 16, 16), tensor(new long[] { 0, 1, 2, 3 }), steps: 40);
    }
}
