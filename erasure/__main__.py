from erasure.cli import main

main()
