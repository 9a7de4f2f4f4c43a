# Combine every evaluation file into the result tables and the plot.


rule aggregate_results:
    input:
        evaluations=evaluation_files(),
        code=stage_code("aggregate"),
    output:
        results="results/tables/results.parquet",
        results_csv="results/tables/results.csv",
        summary_csv=report("results/tables/summary.csv", category="Tables"),
        summary_md="results/tables/summary.md",
        reproduction_csv=report("results/tables/reproduction.csv", category="Tables"),
        reproduction_md="results/tables/reproduction.md",
        plot=report(
            "results/tables/probe_accuracy.png",
            caption="../report/probe_accuracy.rst",
            category="Plots",
        ),
        scatter=report(
            "results/tables/indomain_vs_ood.png",
            caption="../report/indomain_vs_ood.rst",
            category="Plots",
        ),
    log:
        "logs/aggregate_results/tables.log",
    params:
        kinds=model_kinds_json,
    localrule: True
    shell:
        "python -m stages.aggregate --inputs {input.evaluations}"
        " --model-kinds {params.kinds:q} --out-dir results/tables > {log} 2>&1"
