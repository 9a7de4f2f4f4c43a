# Optional hyperparameter search; its best.json feeds the final training runs of a model.


rule tune_model:
    input:
        data=train_data,
        code=stage_code("tune"),
    output:
        "results/tune/{model}/{train_dataset}/best.json",
    log:
        "logs/tune_model/{model}/{train_dataset}.log",
    benchmark:
        "results/benchmarks/tune_model/{model}/{train_dataset}.tsv"
    params:
        kind=model_kind,
        architecture=model_architecture,
        optimisation=model_optimisation,
        trials=config["tune"]["trials"],
        epochs=config["tune"]["epochs"],
        seed=config["tune"]["seed"],
        probe_c=config["probe"]["C"],
        probe_max_iter=config["probe"]["max_iter"],
        device=config["device"],
        occlusion=occlusion_flag,
        # The study is not a declared output, so Snakemake keeps it and a rerun resumes it.
        storage="results/tune/{model}/{train_dataset}/study.sqlite3",
    threads: 2
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(240),
    shell:
        "python -m stages.tune --data {input.data} --kind {params.kind}"
        " --architecture {params.architecture:q} --optimisation {params.optimisation:q}"
        " --trials {params.trials} --epochs {params.epochs} --seed {params.seed}"
        " --probe-c {params.probe_c} --probe-max-iter {params.probe_max_iter}"
        " {params.occlusion} --threads {threads} --device {params.device}"
        " --storage {params.storage} --out {output} > {log} 2>&1"
