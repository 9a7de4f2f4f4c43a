# Probe each trained encoder on every dataset; one Parquet file per (model, seed, dataset).


rule evaluate_model:
    input:
        model="results/train/{model}/{train_dataset}/seed{seed}/model.pt",
        data="results/datasets/{dataset}.h5",
        code=stage_code("evaluate"),
    output:
        "results/eval/{model}/{train_dataset}/seed{seed}/{dataset}.parquet",
    log:
        "logs/evaluate_model/{model}/{train_dataset}/seed{seed}/{dataset}.log",
    benchmark:
        "results/benchmarks/evaluate_model/{model}/{train_dataset}/seed{seed}/{dataset}.tsv"
    params:
        domain=dataset_domain,
        probe_c=config["probe"]["C"],
        probe_max_iter=config["probe"]["max_iter"],
        device=config["device"],
        occlusion=occlusion_flag,
    threads: 1
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(30),
        gpu=GPU_PER_JOB,
    container:
        config["container_image"]
    shell:
        "python -m stages.evaluate --model {input.model} --data {input.data}"
        " --model-name {wildcards.model} --train-dataset {wildcards.train_dataset}"
        " --dataset {wildcards.dataset} --domain {params.domain} --seed {wildcards.seed}"
        " --probe-c {params.probe_c} --probe-max-iter {params.probe_max_iter}"
        " {params.occlusion} --threads {threads} --device {params.device}"
        " --out {output} > {log} 2>&1"
