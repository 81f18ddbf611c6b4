; genstudio: Windows installer for the PyInstaller bundle (Inno Setup 6).
;
; Build on Windows, from the repository root, after `make installer` (or
; `.venv\Scripts\pyinstaller --noconfirm installer\genstudio.spec`) made dist\genstudio\:
;
;     "C:\Program Files (x86)\Inno Setup 6\ISCC.exe" installer\windows\genstudio.iss
;
; The result is dist\genstudio-<version>-setup.exe. The bundle carries onnxruntime-directml (pyproject.toml
; picks it on win32), so DirectML runs on any DirectX 12 GPU, with the CPU as the fallback.
; Pass /DMyAppVersion=1.2.3 to ISCC to stamp another version.

#ifndef MyAppVersion
  #define MyAppVersion "0.1.0"
#endif
#define MyAppName "genstudio"
#define MyAppExe "genstudio.exe"
#define Root "..\.."

[Setup]
AppId={{6C0C6F1E-3B7B-4C55-9E39-5A2B8C1D7E41}
AppName={#MyAppName}
AppVersion={#MyAppVersion}
AppPublisher=genstudio
AppComments=A desktop studio for generative models, offline.
DefaultDirName={autopf}\{#MyAppName}
DefaultGroupName={#MyAppName}
DisableProgramGroupPage=yes
; Per-user by default (no admin prompt); the user may choose an all-users install.
PrivilegesRequired=lowest
PrivilegesRequiredOverridesAllowed=dialog
ArchitecturesAllowed=x64compatible
ArchitecturesInstallIn64BitMode=x64compatible
OutputDir={#Root}\dist
OutputBaseFilename={#MyAppName}-{#MyAppVersion}-setup
SetupIconFile={#Root}\resources\icons\genstudio.ico
UninstallDisplayIcon={app}\{#MyAppExe}
UninstallDisplayName={#MyAppName}
Compression=lzma2/max
SolidCompression=yes
WizardStyle=modern
ChangesAssociations=yes

[Languages]
Name: "english"; MessagesFile: "compiler:Default.isl"

[Tasks]
Name: "desktopicon"; Description: "{cm:CreateDesktopIcon}"; GroupDescription: "{cm:AdditionalIcons}"; Flags: unchecked
Name: "onnxassoc"; Description: "Open .onnx files with genstudio"; GroupDescription: "File types:"

[Files]
Source: "{#Root}\dist\genstudio\*"; DestDir: "{app}"; Flags: ignoreversion recursesubdirs createallsubdirs

[Icons]
Name: "{group}\genstudio"; Filename: "{app}\{#MyAppExe}"; WorkingDir: "{app}"
Name: "{group}\Uninstall genstudio"; Filename: "{uninstallexe}"
Name: "{autodesktop}\genstudio"; Filename: "{app}\{#MyAppExe}"; WorkingDir: "{app}"; Tasks: desktopicon

[Registry]
; .onnx -> genstudio.onnx: double-click opens the studio's Models tab with the file offered for import.
; HKA is HKCU for a per-user install and HKLM for an all-users one; removed again on uninstall.
Root: HKA; Subkey: "Software\Classes\.onnx\OpenWithProgids"; ValueType: string; ValueName: "genstudio.onnx"; ValueData: ""; Flags: uninsdeletevalue; Tasks: onnxassoc
Root: HKA; Subkey: "Software\Classes\genstudio.onnx"; ValueType: string; ValueName: ""; ValueData: "ONNX model"; Flags: uninsdeletekey; Tasks: onnxassoc
Root: HKA; Subkey: "Software\Classes\genstudio.onnx\DefaultIcon"; ValueType: string; ValueName: ""; ValueData: "{app}\{#MyAppExe},0"; Tasks: onnxassoc
Root: HKA; Subkey: "Software\Classes\genstudio.onnx\shell\open\command"; ValueType: string; ValueName: ""; ValueData: """{app}\{#MyAppExe}"" -- ""%1"""; Tasks: onnxassoc
Root: HKA; Subkey: "Software\Classes\Applications\{#MyAppExe}\SupportedTypes"; ValueType: string; ValueName: ".onnx"; ValueData: ""; Flags: uninsdeletekey

[Run]
Filename: "{app}\{#MyAppExe}"; Description: "{cm:LaunchProgram,genstudio}"; Flags: nowait postinstall skipifsilent
