from forensibench.cli import main

main()
