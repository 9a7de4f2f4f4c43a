# Raw files -> verified manifest -> rotated HDF5 dataset.


# Only with downloads on: otherwise files already in data_root are the sole inputs.
if config["download"]:

    rule download_raw:
        output:
            f"{DATA_ROOT}/{{folder}}/raw/{{file}}",
        log:
            "logs/download_raw/{folder}/{file}.log",
        params:
            dataset=folder_dataset,
        localrule: True
        shell:
            "python -m stages.fetch_raw --dataset {params.dataset} --file {wildcards.file}"
            " --out {output} > {log} 2>&1"


rule check_raw:
    input:
        raw=raw_inputs,
        code=stage_code("check_raw"),
    output:
        "results/raw/{dataset}.json",
    log:
        "logs/check_raw/{dataset}.log",
    params:
        data_root=DATA_ROOT,
    localrule: True
    shell:
        "python -m stages.check_raw --dataset {wildcards.dataset}"
        " --data-root {params.data_root:q} --out {output} > {log} 2>&1"


rule build_dataset:
    input:
        manifest="results/raw/{dataset}.json",
        raw=raw_inputs,
        code=stage_code("build_dataset"),
    output:
        "results/datasets/{dataset}.h5",
    log:
        "logs/build_dataset/{dataset}.log",
    benchmark:
        "results/benchmarks/build_dataset/{dataset}.tsv"
    params:
        seed=config["rotation"]["seed"],
        views=config["rotation"]["views"],
        fractions=" ".join(str(f) for f in config["rotation"]["fractions"]),
        max_images=(
            ""
            if config["rotation"]["max_images"] is None
            else f"--max-images {config['rotation']['max_images']}"
        ),
        interpolation=config["rotation"]["interpolation"],
    threads: 2
    resources:
        mem_mb=scaled_by_attempt(4000),
        runtime=scaled_by_attempt(20),
    container:
        config["container_image"]
    shell:
        "python -m stages.build_dataset --manifest {input.manifest} --out {output}"
        " --seed {params.seed} --views {params.views} --fractions {params.fractions}"
        " {params.max_images} --interpolation {params.interpolation}"
        " --threads {threads} > {log} 2>&1"
