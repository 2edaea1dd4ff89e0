"""hvsim: a simulated Windows Server Hyper-V host that speaks WinRM/PSRP.

hvsim models Windows, not hvlab: it never imports hvlab. The only thing it
knows of its clients is the constant wrapper scripts it recognises by content
(see hvsim.scripts).
"""
