from lra.report.cli import main

main()
