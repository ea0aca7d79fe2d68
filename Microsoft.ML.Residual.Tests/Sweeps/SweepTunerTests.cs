using System;
using System.Collections.Generic;
using System.Linq;
using Microsoft.ML.Residual.Sweeps;
using Microsoft.ML.Residual.Training;
using Microsoft.VisualStudio.TestTools.UnitTesting;

namespace Microsoft.ML.Residual.Tests.Sweeps;

// Inside the namespace, so that it wins over ML.NET's Microsoft.ML.SearchSpace namespace.
using SearchSpace = Microsoft.ML.Residual.Sweeps.SearchSpace;

[TestClass]
public sealed class SweepTunerTests
{
    private static SearchSpace Space() => new SearchSpace()
        .Choice("Architecture", "a", "b", "c")
        .LogUniform("LearningRate", 1e-3, 1e-1)
        .Uniform("LabelSmoothing", 0.0, 0.2);

    [TestMethod]
    public void Decode_MapsCoordinatesOntoChoicesAndLinearOrLogarithmicRanges()
    {
        var parameters = Space().Parameters;
        Assert.AreEqual("b", parameters[0].Decode(1));
        // exp(ln a + t·(ln b − ln a)) in float64: the two logs, the difference, the product and the sum leave the exponent
        // within γ₅·(|ln a| + |ln b|); exp turns that into a relative error and rounds once more, and the literal rounds too.
        double LogBound(double value) => value * (Numerics.Float64Error(5, Math.Abs(Math.Log(1e-3)) + Math.Abs(Math.Log(1e-1))) + Numerics.Float64Error(2, 1.0));
        Assert.AreEqual(1e-3, (double)parameters[1].Decode(0), LogBound(1e-3));
        Assert.AreEqual(1e-2, (double)parameters[1].Decode(0.5), LogBound(1e-2), "the middle of a log range is the geometric mean");
        Assert.AreEqual(1e-1, (double)parameters[1].Decode(1), LogBound(1e-1));
        // 0 + 0.5·(0.2 − 0): halving is exact, and half of 0.2's double is 0.1's.
        Assert.AreEqual(0.1, (double)parameters[2].Decode(0.5));
    }

    [TestMethod]
    public void Grid_EnumeratesEveryCombinationOnceThenEnds()
    {
        var sampler = new GridSampler(Space(), pointsPerRange: 2);
        var seen = new List<double[]>();
        while (sampler.Next(Array.Empty<SweepTrial>()) is double[] coordinates) seen.Add(coordinates);
        Assert.AreEqual(3 * 2 * 2, seen.Count);
        Assert.AreEqual(seen.Count, seen.Select(c => string.Join(",", c)).Distinct().Count());
        Assert.IsTrue(sampler.IsFinite);
    }

    [TestMethod]
    public void Random_IsReproducibleFromItsSeedAndStaysInsideTheSpace()
    {
        var first = new RandomSampler(Space(), seed: 7);
        var second = new RandomSampler(Space(), seed: 7);
        for (int i = 0; i < 20; i++)
        {
            double[] a = first.Next(Array.Empty<SweepTrial>())!, b = second.Next(Array.Empty<SweepTrial>())!;
            CollectionAssert.AreEqual(a, b);
            Assert.IsTrue(a[0] is 0 or 1 or 2 && a[1] is >= 0 and <= 1 && a[2] is >= 0 and <= 1);
        }
    }

    [TestMethod]
    public void Random_AvoidsRepeatingAConfigurationOfAFiniteSpace()
    {
        var space = new SearchSpace().Choice("Architecture", "a", "b", "c");
        var sampler = new RandomSampler(space, seed: 1);
        var trials = new List<SweepTrial>();
        for (int i = 0; i < 3; i++) trials.Add(Trial(i + 1, sampler.Next(trials)!, objective: 0));
        CollectionAssert.AreEquivalent(new[] { 0.0, 1.0, 2.0 }, trials.Select(t => t.Coordinates[0]).ToArray());
    }

    [TestMethod]
    public void TreeParzen_ConcentratesOnTheGoodRegionMoreThanRandomSearch()
    {
        // A one-dimensional objective with its optimum at coordinate 0.8: the model-based tuner's later proposals should
        // sit closer to it than random ones do.
        var space = new SearchSpace().Uniform("LabelSmoothing", 0, 1);
        double Objective(double x) => Math.Abs(x - 0.8);
        double MeanDistanceOfLastTen(ConfigurationSampler sampler)
        {
            var trials = new List<SweepTrial>();
            for (int i = 0; i < 30; i++)
            {
                double[] c = sampler.Next(trials)!;
                trials.Add(Trial(i + 1, c, Objective(c[0])));
            }

            return trials.Skip(20).Average(t => Objective(t.Coordinates[0]));
        }

        double parzen = Enumerable.Range(1, 5).Average(seed => MeanDistanceOfLastTen(new TreeParzenSampler(space, seed)));
        double random = Enumerable.Range(1, 5).Average(seed => MeanDistanceOfLastTen(new RandomSampler(space, seed)));
        Assert.IsTrue(parzen < random / 2, $"tree-Parzen mean distance {parzen:F3}, random {random:F3}");
    }

    [TestMethod]
    public void TreeParzen_StepsAwayFromFailedTrials()
    {
        var space = new SearchSpace().Choice("Architecture", "good", "fails");
        var sampler = new TreeParzenSampler(space, seed: 3);
        var trials = new List<SweepTrial> { Trial(1, new[] { 0.0 }, 0.5), Trial(2, new[] { 1.0 }, null), Trial(3, new[] { 1.0 }, null), Trial(4, new[] { 0.0 }, 0.4) };
        int picksGood = Enumerable.Range(0, 20).Count(_ => sampler.Next(trials)![0] == 0);
        Assert.IsTrue(picksGood >= 15, $"chose the good value {picksGood} of 20 times");
    }

    [TestMethod]
    public void Rungs_GrowByTheReductionFactorAndEndAtTheEpochsPerTrial()
    {
        CollectionAssert.AreEqual(new[] { 1, 3, 8 }, SuccessiveHalvingPlanner.RungsFor(8, 3, 1));
        CollectionAssert.AreEqual(new[] { 1, 2, 4 }, SuccessiveHalvingPlanner.RungsFor(4, 2, 1));
        CollectionAssert.AreEqual(new[] { 2, 6, 18, 20 }, SuccessiveHalvingPlanner.RungsFor(20, 3, 2));
        CollectionAssert.AreEqual(new[] { 5 }, SuccessiveHalvingPlanner.RungsFor(5, 3, 5));
    }

    [TestMethod]
    public void SuccessiveHalving_PromotesTheTopThirdOfARungBeforeStartingNewConfigurations()
    {
        var planner = new SuccessiveHalvingPlanner(new RandomSampler(Space(), 1), maxEpochs: 9, maxTrials: null, reductionFactor: 3, minEpochs: 1);
        var trials = new List<SweepTrial>();
        TrialJob Next() => planner.Next(trials)!.Value;

        // Two trials at rung 1: the top third of two is nobody, so a third configuration starts.
        trials.Add(Paused(1, epochs: 1, objective: 0.5));
        trials.Add(Paused(2, epochs: 1, objective: 0.2));
        Assert.IsNull(Next().Continue);
        // Three trials at rung 1: the best (trial 2) continues to three epochs.
        trials.Add(Paused(3, epochs: 1, objective: 0.9));
        TrialJob job = Next();
        Assert.AreEqual(2, job.Continue!.Id);
        Assert.AreEqual(3, job.TargetEpochs);
    }

    [TestMethod]
    public void SuccessiveHalving_BreaksATieOfTheObjectiveByTheLowerValidationLoss()
    {
        var planner = new SuccessiveHalvingPlanner(new RandomSampler(Space(), 1), maxEpochs: 9, maxTrials: null, reductionFactor: 3, minEpochs: 1);
        // Three trials at chance accuracy after one epoch (the same objective); trial 3 has learnt most (the lowest loss).
        var trials = new List<SweepTrial>
        {
            Paused(1, epochs: 1, objective: -0.2, validationLoss: 1.61),
            Paused(2, epochs: 1, objective: -0.2, validationLoss: 1.70),
            Paused(3, epochs: 1, objective: -0.2, validationLoss: 1.42),
        };
        TrialJob job = planner.Next(trials)!.Value;
        Assert.AreEqual(3, job.Continue!.Id);
        Assert.AreEqual(3, job.TargetEpochs);
    }

    [TestMethod]
    public void SuccessiveHalving_WithNoNewTrialsLeft_ContinuesTheBestPausedTrialToTheLastRung()
    {
        var planner = new SuccessiveHalvingPlanner(new RandomSampler(Space(), 1), maxEpochs: 9, maxTrials: 2, reductionFactor: 3, minEpochs: 1);
        var trials = new List<SweepTrial> { Paused(1, epochs: 1, objective: 0.5), Paused(2, epochs: 1, objective: 0.2) };
        TrialJob job = planner.Next(trials)!.Value;
        Assert.AreEqual(2, job.Continue!.Id);
        Assert.AreEqual(3, job.TargetEpochs);

        var settled = Trial(2, new[] { 0.0, 0.5, 0.5 }, 0.1);
        settled.AddRung(9, 0.1);
        Assert.IsNull(planner.Next(new List<SweepTrial> { trials[0], settled }), "a trial trained fully: the sweep is over");
    }

    [TestMethod]
    public void SuccessiveHalving_UnderATimeBudget_FinishesTheMostAdvancedTrialWhenTheTimeLeftWouldNotCoverAnotherJobAndIt()
    {
        var planner = new SuccessiveHalvingPlanner(new RandomSampler(Space(), 1), maxEpochs: 9, maxTrials: null, reductionFactor: 3, minEpochs: 1);
        // Ten seconds an epoch so far. Trial 1 reached rung 3; nothing can be promoted, so the search would start a new
        // configuration: one epoch, then trial 1's six epochs to the last rung, 70 s (87.5 s with the planner's margin).
        var trials = new List<SweepTrial>
        {
            Timed(Paused(1, epochs: 3, objective: -0.6, rungOne: -0.5), secondsPerEpoch: 10),
            Timed(Paused(2, epochs: 1, objective: -0.3), secondsPerEpoch: 10),
            Timed(Paused(3, epochs: 1, objective: -0.2), secondsPerEpoch: 10),
        };

        Assert.IsNull(planner.Next(trials)!.Value.Continue, "no budget: a new configuration");
        Assert.IsNull(planner.Next(trials, secondsLeft: 100)!.Value.Continue, "time for both: a new configuration");
        TrialJob finish = planner.Next(trials, secondsLeft: 80)!.Value;
        Assert.AreEqual(1, finish.Continue!.Id, "not enough for both: the most advanced trial goes on");
        Assert.AreEqual(9, finish.TargetEpochs);

        var done = Timed(Paused(4, epochs: 9, objective: -0.7), secondsPerEpoch: 10);
        done.Status = TrialStatus.Completed;
        trials.Add(done);
        Assert.IsNull(planner.Next(trials, secondsLeft: 80)!.Value.Continue, "a trial trained fully already: the search goes on while time lasts");
    }

    private static SweepTrial Timed(SweepTrial trial, double secondsPerEpoch)
    {
        trial.AddEpoch(new EpochReport(trial.Epochs, 9, 1.0, 0.2, 1.0, 0.5, 0.1, 100, TimeSpan.FromSeconds(1), TimeSpan.Zero, false));
        trial.Seconds = trial.Epochs * secondsPerEpoch;
        return trial;
    }

    private static SweepTrial Paused(int id, int epochs, double objective, double? validationLoss = null, double? rungOne = null)
    {
        var trial = new SweepTrial(id, new[] { 0.0, id / 10.0, 0.5 }, new Dictionary<string, object>()) { Status = TrialStatus.Pruned };
        if (rungOne is double first) trial.AddRung(1, first);
        if (validationLoss is double loss)
            trial.AddEpoch(new EpochReport(epochs, 9, 1.0, 0.2, loss, -objective, 0.1, 100, TimeSpan.FromSeconds(1), TimeSpan.Zero, false));
        trial.AddRung(epochs, objective);
        return trial;
    }

    private static SweepTrial Trial(int id, double[] coordinates, double? objective)
    {
        var trial = new SweepTrial(id, coordinates, new Dictionary<string, object>()) { Status = objective is null ? TrialStatus.Failed : TrialStatus.Completed };
        if (objective is double value) trial.AddRung(1, value);
        return trial;
    }
}
