"""Evaluation: the paper's protocol on the built-in maze and on user data (`worldsim eval`).

    tasks        episodes with ground truth, free-running and teacher-forced rollouts, cue recall
    metrics      PSNR, SSIM and LPIPS per frame and per distance from the context
    lpips        LPIPS (AlexNet) in plain torch; `worldsim fetch-lpips` gets its weights once
    compare      LSSVWM vs the four baselines at equal parameters and training (the paper's Table 2)
    flops        analytic matmul FLOPs per frame, for model FLOP utilisation (`worldsim bench`)
    provenance   command, config, weights hash, device, versions and date on every JSON and PNG
    plots        metric curves, frame strips, bench plots
"""
