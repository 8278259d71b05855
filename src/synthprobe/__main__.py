from synthprobe.cli import main

main()
