from lra.bench.cli import main

main()
