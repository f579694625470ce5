"""``ecap up`` printed "ready" while the embedded broker was down: a broker recorded in the
stack file counted as running when its process was alive and its port took a TCP
connection, which a broker shutting down (or stopped) still does. Now it must answer a
metadata request, or ``ecap up`` starts a new one."""
