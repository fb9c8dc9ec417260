from casereport.cli import main

main()
