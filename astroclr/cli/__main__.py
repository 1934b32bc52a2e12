from astroclr.cli import main

main()
