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
        plot=report(
            "results/tables/probe_accuracy.png",
            caption="../report/probe_accuracy.rst",
            category="Plots",
        ),
    log:
        "logs/aggregate_results/tables.log",
    localrule: True
    shell:
        "python -m stages.aggregate --inputs {input.evaluations}"
        " --out-dir results/tables > {log} 2>&1"
