# The synthetic 1D experiments. E1: U-NFT on time-warped signals, read out by its character
# spectrum and multi-step rollouts. E2: g-NFT and abelian G-NFT trained under observation
# noise, tested on noise-free signals and compared with a 16-bin DFT.
# Levels: generated signals -> trained models -> evaluations -> tables under results/tables/.
# NOTE: stage_code of train_sequence and evaluate_sequence lists every image model file too,
# because importing stages.models.sequence runs stages/models/__init__.py, which imports them
# all. Editing an image model therefore reruns the E1 and E2 training and evaluation jobs.


include: "synthetic_common.smk"


rule generate_signals_e1:
    input:
        code=stage_code("generate_signals"),
    output:
        "results/datasets/e1/freqseed{freqseed}.h5",
    log:
        "logs/generate_signals_e1/freqseed{freqseed}.log",
    params:
        num_data=E1["data"]["num_sequences"],
        frames=E1["data"]["frames"],
        fractions=fractions_arg(E1["data"]["fractions"]),
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(2000),
        runtime=scaled_by_attempt(10),
    shell:
        "python -m stages.generate_signals e1 --freqseed {wildcards.freqseed}"
        " --num-data {params.num_data} --frames {params.frames} --fractions {params.fractions}"
        " --out {output} > {log} 2>&1"


rule generate_rollout_signals_e1:
    input:
        code=stage_code("generate_signals"),
    output:
        "results/datasets/e1/freqseed{freqseed}_rollout.h5",
    log:
        "logs/generate_rollout_signals_e1/freqseed{freqseed}.log",
    params:
        num_data=E1["rollout"]["num_sequences"],
        frames=E1["rollout"]["frames"],
        test_seeds=" ".join(str(seed) for seed in E1["rollout"]["test_seeds"]),
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(10),
    shell:
        "python -m stages.generate_signals e1-rollout --freqseed {wildcards.freqseed}"
        " --test-seeds {params.test_seeds} --num-data {params.num_data}"
        " --frames {params.frames} --out {output} > {log} 2>&1"


rule generate_signals_e2:
    input:
        code=stage_code("generate_signals"),
    output:
        "results/datasets/e2/seed{seed}_frames{frames}.h5",
    log:
        "logs/generate_signals_e2/seed{seed}_frames{frames}.log",
    params:
        num_data=E2["data"]["num_sequences"],
        fractions=fractions_arg(E2["data"]["fractions"]),
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(2000),
        runtime=scaled_by_attempt(10),
    wildcard_constraints:
        frames=r"\d+",
    shell:
        "python -m stages.generate_signals e2 --seed {wildcards.seed}"
        " --num-data {params.num_data} --frames {wildcards.frames}"
        " --fractions {params.fractions} --out {output} > {log} 2>&1"


# The authors' noise-free test set: seed 1234, 5000 sequences of 5 frames (fixed protocol).
rule generate_test_signals_e2:
    input:
        code=stage_code("generate_signals"),
    output:
        "results/datasets/e2/test.h5",
    log:
        "logs/generate_test_signals_e2/test.log",
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(2000),
        runtime=scaled_by_attempt(10),
    shell:
        "python -m stages.generate_signals e2-test --out {output} > {log} 2>&1"


rule train_sequence_model_e1:
    input:
        data="results/datasets/e1/freqseed{freqseed}.h5",
        code=stage_code("train_sequence"),
    output:
        model="results/train/e1/unft/freqseed{freqseed}/seed{seed}/model.pt",
        metrics="results/train/e1/unft/freqseed{freqseed}/seed{seed}/metrics.parquet",
    log:
        "logs/train_sequence_model_e1/unft/freqseed{freqseed}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_sequence_model_e1/unft/freqseed{freqseed}/seed{seed}.tsv"
    params:
        architecture=canonical_json(E1["architecture"]),
        optimisation=e1_optimisation(),
        frames=E1["data"]["frames"],
        cond_frames=E1["training"]["cond_frames"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(3000),
        runtime=scaled_by_attempt(120),
    shell:
        "python -m stages.train_sequence --data {input.data} --frames {params.frames}"
        " --cond-frames {params.cond_frames} --architecture {params.architecture:q}"
        " --optimisation {params.optimisation:q} --noise-std 0 --seed {wildcards.seed}"
        " --threads {threads} --device {params.device} --out-model {output.model}"
        " --out-metrics {output.metrics} > {log} 2>&1"


rule train_sequence_model_e2:
    input:
        data=e2_train_data,
        code=stage_code("train_sequence"),
    output:
        model="results/train/e2/{e2_model}/sigma{sigma}/seed{seed}/model.pt",
        metrics="results/train/e2/{e2_model}/sigma{sigma}/seed{seed}/metrics.parquet",
    log:
        "logs/train_sequence_model_e2/{e2_model}/sigma{sigma}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_sequence_model_e2/{e2_model}/sigma{sigma}/seed{seed}.tsv"
    params:
        architecture=e2_architecture,
        optimisation=e2_optimisation,
        frames=e2_frames,
        cond_frames=e2_cond_frames,
        device=config["device"],
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(3000),
        runtime=scaled_by_attempt(180),
    shell:
        "python -m stages.train_sequence --data {input.data} --frames {params.frames}"
        " --cond-frames {params.cond_frames} --architecture {params.architecture:q}"
        " --optimisation {params.optimisation:q} --noise-std {wildcards.sigma}"
        " --seed {wildcards.seed} --threads {threads} --device {params.device}"
        " --out-model {output.model} --out-metrics {output.metrics} > {log} 2>&1"


rule evaluate_sequence_model_e1:
    input:
        model="results/train/e1/unft/freqseed{freqseed}/seed{seed}/model.pt",
        data="results/datasets/e1/freqseed{freqseed}_rollout.h5",
        code=stage_code("evaluate_sequence"),
    output:
        spectrum="results/eval/e1/unft/freqseed{freqseed}/seed{seed}/spectrum.parquet",
        rollout="results/eval/e1/unft/freqseed{freqseed}/seed{seed}/rollout.parquet",
    log:
        "logs/evaluate_sequence_model_e1/unft/freqseed{freqseed}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_sequence_model_e1/unft/freqseed{freqseed}/seed{seed}.tsv"
    params:
        max_frequency=E1["max_frequency"],
        device=config["device"],
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(20),
    shell:
        "python -m stages.evaluate_sequence e1 --model {input.model} --data {input.data}"
        " --freqseed {wildcards.freqseed} --seed {wildcards.seed}"
        " --max-frequency {params.max_frequency} --threads {threads} --device {params.device}"
        " --out-spectrum {output.spectrum} --out-rollout {output.rollout} > {log} 2>&1"


rule evaluate_sequence_model_e2:
    input:
        model="results/train/e2/{e2_model}/sigma{sigma}/seed{seed}/model.pt",
        data="results/datasets/e2/test.h5",
        code=stage_code("evaluate_sequence"),
    output:
        "results/eval/e2/{e2_model}/sigma{sigma}/seed{seed}.parquet",
    log:
        "logs/evaluate_sequence_model_e2/{e2_model}/sigma{sigma}/seed{seed}.log",
    benchmark:
        "results/benchmarks/evaluate_sequence_model_e2/{e2_model}/sigma{sigma}/seed{seed}.tsv"
    params:
        device=config["device"],
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(2000),
        runtime=scaled_by_attempt(20),
    shell:
        "python -m stages.evaluate_sequence e2 --model {input.model} --data {input.data}"
        " --model-name {wildcards.e2_model} --seed {wildcards.seed}"
        " --noise-std {wildcards.sigma} --threads {threads} --device {params.device}"
        " --out {output} > {log} 2>&1"


rule evaluate_dft_baseline_e2:
    input:
        data="results/datasets/e2/test.h5",
        code=stage_code("evaluate_sequence"),
    output:
        "results/eval/e2/dft.parquet",
    log:
        "logs/evaluate_dft_baseline_e2/dft.log",
    benchmark:
        "results/benchmarks/evaluate_dft_baseline_e2/dft.tsv"
    params:
        num_bins=E2["dft_bins"],
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(2000),
        runtime=scaled_by_attempt(10),
    shell:
        "python -m stages.evaluate_sequence dft --data {input.data}"
        " --num-bins {params.num_bins} --out {output} > {log} 2>&1"


rule aggregate_synthetic_e1:
    input:
        spectra=e1_evaluation_files("spectrum"),
        rollouts=e1_evaluation_files("rollout"),
        code=stage_code("aggregate_synthetic"),
    output:
        peaks_csv="results/tables/e1_peaks.csv",
        peaks_md="results/tables/e1_peaks.md",
        plot=report(
            "results/tables/e1_spectrum.png",
            caption="../report/e1_spectrum.rst",
            category="Synthetic",
        ),
    log:
        "logs/aggregate_synthetic_e1/tables.log",
    params:
        steps=" ".join(str(step) for step in E1["table_rollout_steps"]),
    localrule: True
    shell:
        "python -m stages.aggregate_synthetic e1 --spectra {input.spectra}"
        " --rollouts {input.rollouts} --rollout-steps {params.steps}"
        " --out-dir results/tables > {log} 2>&1"


rule aggregate_synthetic_e2:
    input:
        evaluations=e2_evaluation_files(),
        dft="results/eval/e2/dft.parquet",
        code=stage_code("aggregate_synthetic"),
    output:
        csv=report("results/tables/e2_compression.csv", category="Synthetic"),
        markdown="results/tables/e2_compression.md",
    log:
        "logs/aggregate_synthetic_e2/tables.log",
    params:
        labels=e2_labels_json(),
    localrule: True
    shell:
        "python -m stages.aggregate_synthetic e2 --inputs {input.evaluations}"
        " --dft {input.dft} --labels {params.labels:q} --out-dir results/tables > {log} 2>&1"
