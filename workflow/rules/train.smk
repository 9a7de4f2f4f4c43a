# Train every configured model on the in-domain dataset, once per seed.


rule train_model:
    input:
        data=train_data,
        tuned=tuned_parameters,
        code=stage_code("train"),
    output:
        model="results/train/{model}/{train_dataset}/seed{seed}/model.pt",
        metrics=report(
            "results/train/{model}/{train_dataset}/seed{seed}/metrics.parquet",
            category="Training",
        ),
    log:
        "logs/train_model/{model}/{train_dataset}/seed{seed}.log",
    benchmark:
        "results/benchmarks/train_model/{model}/{train_dataset}/seed{seed}.tsv"
    params:
        kind=model_kind,
        architecture=model_architecture,
        optimisation=model_optimisation,
        device=config["device"],
        occlusion=occlusion_flag,
        tuned=tuned_flag,
    threads: 2
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(60),
        gpu=GPU_PER_JOB,
    container:
        config["container_image"]
    shell:
        "python -m stages.train --data {input.data} --kind {params.kind}"
        " --architecture {params.architecture:q} --optimisation {params.optimisation:q}"
        " --seed {wildcards.seed} --threads {threads} --device {params.device}"
        " {params.occlusion} {params.tuned} --out-model {output.model} --out-metrics {output.metrics} > {log} 2>&1"
