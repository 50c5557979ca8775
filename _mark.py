import os, time, threading
T0 = float(os.environ.get("CONVNET_STUDIO_LAUNCH_T", time.time()))
def mark(what): print(f"TRACE {time.time()-T0:.3f} {threading.current_thread().name} {what}", flush=True)
